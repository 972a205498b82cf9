"""`panel("<title>")`: a dashboard panel inside a notebook.

With a Grafana reachable (compose stack, real deployment) it is the real panel in an
iframe on Grafana's single-panel URL; without one (the local stack) it is a plotly
rendering of the same panel computed from the panel's own PromQL. Either way the
query comes from the dashboard JSON, never from a copy in the notebook.
"""

from __future__ import annotations

import re
from typing import Collection, Mapping

import httpx
import plotly.graph_objects as go

from labsupport.observe import dashboards, prom
from labsupport.config import LabConfig, get_config


def grafana_up(cfg: LabConfig) -> bool:
    if not cfg.grafana:
        return False
    try:
        return httpx.get(f"{cfg.grafana}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def panel_url(p: dashboards.Panel, cfg: LabConfig, minutes: int = 15) -> str:
    return (f"{cfg.grafana}/d-solo/{p.dashboard_uid}/?orgId=1&panelId={p.id}"
            f"&from=now-{minutes}m&to=now&refresh=5s&theme=light")


def legend(fmt: str, metric: dict) -> str:
    """Grafana's legendFormat: '{{reason}}' → the series' reason label."""
    if not fmt:
        return ",".join(f"{k}={v}" for k, v in metric.items() if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def traces(p: dashboards.Panel, minutes: float = 15, step: float = 5, cfg: LabConfig | None = None,
           only: Mapping[str, Collection[str]] | None = None) -> list[dict]:
    """[{name, x: [datetime...], y: [float...]}] for every series of every target; with
    ``only`` ({label: allowed values}), just the series whose labels are among those
    (e.g. a ring's nodes, not the single node that ran in the same window)."""
    import datetime as dt

    out = []
    for t in p.targets:
        for series in prom.query_range(t.expr, minutes, step, cfg):
            if only and any(series["metric"].get(label) not in allowed for label, allowed in only.items()):
                continue
            xs = [dt.datetime.fromtimestamp(float(ts), tz=dt.timezone.utc) for ts, _ in series["values"]]
            ys = [float(v) for _, v in series["values"]]
            out.append({"name": legend(t.legend, series["metric"]), "x": xs, "y": ys})
    return out


#: Grafana unit ids as an axis title ("short" is Grafana's plain number: no title)
AXIS_TITLES = {"short": "", "reqps": "requests/s", "Bps": "bytes/s", "s": "seconds"}


def axis_title(unit: str) -> str:
    return AXIS_TITLES.get(unit, unit)


def figure(title: str, minutes: float = 15, cfg: LabConfig | None = None,
           panel: dashboards.Panel | None = None) -> go.Figure:
    """The panel drawn with plotly from Prometheus: the dashboard's panel ``title``, or
    ``panel`` (a query of your own, drawn as the dashboard would)."""
    p = panel or dashboards.find(title)
    fig = go.Figure(layout=dict(title=p.title, height=300, margin=dict(l=40, r=10, t=40, b=30),
                                yaxis_title=axis_title(p.unit), legend=dict(orientation="h")))
    data = traces(p, minutes, cfg=cfg)
    for tr in data:
        fig.add_scatter(x=tr["x"], y=tr["y"], name=tr["name"], mode="lines")
    if not data:
        fig.add_annotation(text="No data — see `lab lint-metrics`", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    return fig


def panel(title: str, minutes: float = 15, cfg: LabConfig | None = None, width: int = 600, height: int = 300):
    """The Grafana panel if Grafana is reachable, else its plotly twin."""
    cfg = cfg or get_config()
    p = dashboards.find(title)
    if grafana_up(cfg):
        from IPython.display import IFrame

        return IFrame(panel_url(p, cfg, int(minutes)), width=width, height=height)
    return figure(title, minutes, cfg)
