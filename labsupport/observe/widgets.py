"""Live plots for notebooks: a plotly FigureWidget refreshed by a background thread,
with a stop button. What it plots:

* a dashboard panel's queries, by the panel's title (``LivePlot("Rows written/s")``);
* any PromQL expression (``LivePlot("lag", expr='sum(consumer_lag{job="stream"})')``);
* numbers that are not in Prometheus at all, sampled from Python callables each
  interval (``LivePlot("claimed vs stored", series={"claimed": f, "stored": g})``) —
  e.g. the rows Cassandra really holds, beside what a counter claims.

In JupyterLab the figure moves every ``interval`` seconds. In a headless papermill run
there is no frontend to draw it, but the thread still collects the data; ``stop()``
then returns a static figure of what was collected, which papermill keeps.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable, Collection, Mapping

import plotly.graph_objects as go

from labsupport.observe import dashboards, panels
from labsupport.config import LabConfig, get_config


class LivePlot:
    def __init__(self, title: str, minutes: float = 5, interval: float = 2.0, duration: float | None = None,
                 cfg: LabConfig | None = None, expr: str | None = None,
                 series: dict[str, Callable[[], float]] | None = None, unit: str = "",
                 only: Mapping[str, Collection[str]] | None = None):
        """``only``: {label: values} keeps just those series (`panels.traces`)."""
        import ipywidgets as widgets

        if expr is not None:
            self.panel = dashboards.Panel("", 0, title, unit, "", (dashboards.Target(expr, ""),))
        elif series is not None:
            self.panel = dashboards.Panel("", 0, title, unit, "", ())
        else:
            self.panel = dashboards.find(title)
        self.series, self.only = series, only
        self.samples: dict[str, tuple[list, list]] = {name: ([], []) for name in series or {}}
        self.minutes, self.interval, self.duration = minutes, interval, duration
        self.cfg = cfg or get_config()
        self.figure = go.FigureWidget(layout=dict(title=f"{self.panel.title} (live)", height=300,
                                                  margin=dict(l=40, r=10, t=40, b=30), legend=dict(orientation="h"),
                                                  yaxis_title=panels.axis_title(self.panel.unit)))
        self.refreshes = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self.button = widgets.Button(description="Stop", icon="stop")
        self.button.on_click(lambda _: self.stop())
        self.widget = widgets.VBox([self.figure, self.button])
        self._thread = threading.Thread(target=self._run, name=f"live:{title}", daemon=True)
        self._thread.start()

    def _sampled(self) -> list[dict]:
        """One new point per callable (a failing one is skipped this round, not fatal)."""
        now = datetime.now(timezone.utc)
        for name, fn in self.series.items():
            value = fn()
            if value is not None:
                xs, ys = self.samples[name]
                xs.append(now)
                ys.append(float(value))
        return [{"x": list(xs), "y": list(ys), "name": name} for name, (xs, ys) in self.samples.items()]

    def refresh(self) -> None:
        data = self._sampled() if self.series is not None else \
            panels.traces(self.panel, self.minutes, step=max(self.interval, 1), cfg=self.cfg, only=self.only)
        with self.figure.batch_update():
            if len(self.figure.data) != len(data):
                self.figure.data = ()
                for tr in data:
                    self.figure.add_scatter(x=tr["x"], y=tr["y"], name=tr["name"], mode="lines")
            else:
                for trace, tr in zip(self.figure.data, data):
                    trace.x, trace.y, trace.name = tr["x"], tr["y"], tr["name"]
        self.refreshes += 1

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                self.refresh()
                self.error = None
            except Exception as exc:  # keep plotting through a Prometheus restart
                self.error = f"{type(exc).__name__}: {exc}"
            if self.duration is not None and time.monotonic() - started >= self.duration:
                break
            self._stop.wait(self.interval)
        self.button.disabled = True
        self.button.description = "Stopped"

    def wait(self, timeout: float | None = None) -> "LivePlot":
        """Block until a bounded (``duration``) plot has finished."""
        self._thread.join(timeout)
        return self

    def drawn_until(self) -> datetime | None:
        """The time of the newest point every line has reached (None before the first)."""
        ends = [t.x[-1] for t in self.figure.data if t.x]
        return min(ends) if ends and len(ends) == len(self.figure.data) else None

    def wait_drawn(self, until: datetime, timeout: float = 60) -> "LivePlot":
        """Block until every line reaches ``until``: e.g. so a static copy taken next shows
        a rate's plateau after the writes, not just its rise."""
        from labsupport.waits import wait_for

        wait_for(lambda: (end := self.drawn_until()) is not None and end >= until, timeout,
                 f"the live plot {self.panel.title!r} to reach {until:%H:%M:%S}", interval=self.interval / 2)
        return self

    def stop(self) -> go.Figure:
        """Stop refreshing; returns a static copy (what a headless run keeps)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(self.interval + 15)
        return go.Figure(self.figure)

    def points(self) -> int:
        return sum(len(t.y or ()) for t in self.figure.data)


def beside(title: str, **kwargs):
    """The dashboard panel and a live plot of the same queries, side by side.

    Both halves are plain widgets (no ``Output`` capture widget, which can leave a
    headless papermill run waiting forever once a background thread also talks to
    the frontend)."""
    import ipywidgets as widgets

    live = LivePlot(title, **kwargs)
    static = panels.panel(title, cfg=live.cfg)
    if isinstance(static, go.Figure):
        left = go.FigureWidget(static)
    else:  # a Grafana iframe
        left = widgets.HTML(static._repr_html_())
    return widgets.HBox([left, live.widget]), live
