"""The metric-name linter: the guard against failure mode 4.

A dashboard query naming a series that does not exist is not an error anywhere: the
panel just stays empty. This checks every query of every dashboard against the
series Prometheus really has and, for each one that returns nothing, names the
metrics it refers to that don't exist and the closest ones that do.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable

from labsupport.observe import dashboards, prom
from labsupport.config import LabConfig, get_config
from labsupport.times import duration_s

# PromQL words that look like metric names but aren't.
_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "le", "inf", "nan",
}
#: a name counts as current when it has a sample within this many scrape intervals
FRESH_SCRAPES = 3
_IDENT = re.compile(r"(?<![\w:.\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label matchers, strings, functions and
    keywords removed)."""
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)           # label matchers
    stripped = re.sub(r'"[^"]*"|\'[^\']*\'', '""', stripped)  # string literals
    stripped = re.sub(r"\[[^\]]*\]", "[]", stripped)        # range/subquery durations
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", stripped)
    names = {m.group(1) for m in _IDENT.finditer(stripped)}
    return {n for n in names if n.lower() not in _KEYWORDS and not re.fullmatch(r"\d+\w*", n)}


@dataclass
class Finding:
    panel: str
    expr: str
    missing_metrics: list[str]
    suggestions: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        hints = "; ".join(f"{m} → did you mean {', '.join(s) or 'nothing close'}?"
                          for m, s in self.suggestions.items())
        why = hints or "metrics exist, but the label matchers select no series"
        return f"[empty] {self.panel}: {self.expr}\n        {why}"


def current_names(cfg: LabConfig | None = None) -> set[str]:
    """The metric names some target exported in its last few scrapes.

    Not its label-values API (`prom.metric_names`): that lists every name still in its
    storage, so a name a target stopped exporting a minute ago (a changed exporter rule,
    lesson 07) would still count as existing. Not the instant view either: a restarted
    Prometheus writes no staleness markers for the series it scraped before it stopped,
    so those stay in every instant query for its 5-minute lookback (lesson 07 run right
    after lesson 06 saw its topics' ``_total`` series linger there)."""
    cfg = cfg or get_config()
    window = round(FRESH_SCRAPES * duration_s(cfg.scrape_interval))
    return {s["metric"]["__name__"] for s in prom.query(f'{{__name__!=""}}[{window}s]', cfg)}


def check(expr: str, known: set[str] | None = None, title: str = "query", cfg: LabConfig | None = None) -> Finding | None:
    """One query: None when it returns series, else what is wrong with it (the metrics it
    names that Prometheus does not have now, with the closest ones it has)."""
    if prom.query(expr, cfg):
        return None
    known = current_names(cfg) if known is None else known
    missing = sorted(n for n in metric_names_in(expr) if n not in known)
    return Finding(title, expr, missing, {m: difflib.get_close_matches(m, known, n=3, cutoff=0.6) for m in missing})


def shipped_panels() -> list[dashboards.Panel]:
    """Every query the lab shows: the dashboard's panels and the pipeline view's."""
    from labsupport.observe import pipeline_stats

    return dashboards.panels() + pipeline_stats.panels()


def lint(cfg: LabConfig | None = None, panels: Iterable[dashboards.Panel] | None = None) -> list[Finding]:
    """Every query of ``panels`` (default: every query the lab shows) that returns no
    series, with what is wrong in it."""
    known = current_names(cfg)
    findings = []
    for panel in shipped_panels() if panels is None else panels:
        for target in panel.targets:
            finding = check(target.expr, known, panel.title, cfg)
            if finding:
                findings.append(finding)
    return findings


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]
