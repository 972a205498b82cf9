"""Audit results a learner can read: one compact table row per run.

``results_table({"run A (latest)": report_a, "run B (earliest)": report_b},
extra={"resumed from batch": {"run A (latest)": 7, "run B (earliest)": 0}})`` gives a pandas
Styler with one row per run: produced, landed, missing, duplicated, quarantined, plus the
rarer problems (dead-lettered, published twice, under counted, stored twice, unexpected) only when some run
has them, plus the extra columns. A problem count that is not 0 is highlighted, so the eye
goes to what went wrong instead of reading a 40-line ``as_dict()``.

``AuditReport`` renders itself through the same function (its ``_repr_html_``), so a cell
ending in ``report`` shows a one-row table.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import pandas as pd
from pandas.io.formats.style import Styler

from labsupport.lessons.predictions import format_value

#: (report field, column title); always shown
ALWAYS = (("produced", "produced"), ("landed", "landed"), ("missing", "missing"), ("duplicated", "duplicated"),
          ("quarantined", "quarantined"))
#: shown only when some run has a non-zero count
WHEN_NOT_ZERO = (("dead_lettered", "dead-lettered"), ("published_twice", "published twice"),
                 ("under_counted", "under counted"),
                 ("stored_twice", "stored twice"), ("unexpected", "unexpected"))
#: the columns where anything but 0 is a problem worth the eye
PROBLEMS = ("missing", "duplicated", "quarantined", "dead-lettered", "published twice", "under counted",
            "stored twice", "unexpected")
HIGHLIGHT = "background-color: #ffd6d6; color: #8b0000; font-weight: bold"


def _fields(run: object) -> Mapping:
    if dataclasses.is_dataclass(run) and not isinstance(run, type):
        return dataclasses.asdict(run)
    if isinstance(run, Mapping):
        return run
    raise TypeError(f"a run is an AuditReport or a mapping of its counts, not {type(run).__name__}")


def summary_rows(runs: Mapping[str, object]) -> pd.DataFrame:
    """The compact rows as a DataFrame (index: the run names), without styling. A count a
    run does not have (a mapping without it, ``published_twice`` None: no topic read) is NA."""
    fields = {name: _fields(run) for name, run in runs.items()}
    shown = list(ALWAYS) + [(key, title) for key, title in WHEN_NOT_ZERO
                            if any(f.get(key) not in (None, 0) for f in fields.values())]
    frame = pd.DataFrame({title: [f.get(key) for f in fields.values()] for key, title in shown},
                         index=pd.Index(list(fields)))
    return frame.astype("Int64")


def summary_line(name: str, run: object) -> str:
    """One run's compact row as text: ``name · produced 5 · landed 3 · missing 2 · …``."""
    row = summary_rows({name: run}).iloc[0]
    cells = (f"{title} {'–' if pd.isna(v) else format_value(int(v))}" for title, v in row.items())
    return " · ".join([name, *cells])


def _highlight(value: object) -> str:
    return HIGHLIGHT if not pd.isna(value) and value != 0 else ""


def results_table(runs: Mapping[str, object], extra: Mapping[str, Mapping[str, object]] | None = None,
                  caption: str | None = None) -> Styler:
    """One row per run (see the module doc). ``extra`` maps a column title to
    {run name: value}; a run it does not name shows a blank cell."""
    frame = summary_rows(runs)
    counts = list(frame.columns)
    for title, values in (extra or {}).items():
        unknown = set(values) - set(frame.index)
        if unknown:
            raise KeyError(f"extra column {title!r} names runs that are not in the table: {sorted(unknown)}")
        frame[title] = pd.Series([values.get(name) for name in frame.index], index=frame.index, dtype=object)
    problems = [c for c in PROBLEMS if c in frame.columns]
    styler = (frame.style.format("{:,}", subset=counts, na_rep="–")
              .format(format_value, na_rep="–", subset=[c for c in frame.columns if c not in counts])
              .map(_highlight, subset=problems))
    return styler.set_caption(caption) if caption else styler
