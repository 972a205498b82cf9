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

from labsupport.observe import dashboards, prom
from labsupport.config import LabConfig

# PromQL words that look like metric names but aren't.
_KEYWORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "le", "inf", "nan",
}
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


def lint(cfg: LabConfig | None = None) -> list[Finding]:
    """Every dashboard query that returns no series, with what is wrong in it."""
    known = set(prom.metric_names(cfg))
    findings = []
    for panel in dashboards.panels():
        for target in panel.targets:
            if prom.query(target.expr, cfg):
                continue
            missing = sorted(n for n in metric_names_in(target.expr) if n not in known)
            findings.append(Finding(panel.title, target.expr, missing,
                                    {m: difflib.get_close_matches(m, known, n=3, cutoff=0.6) for m in missing}))
    return findings


def as_dicts(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]
