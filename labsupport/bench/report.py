"""`lab bench`'s report: the figures each step measured, the headline ratios computed
from them, a check that the report is complete and consistent, and its files.

The data contract, stated once:

* ``sections`` — what each step returned (``suite.STEPS``), untouched;
* ``figures`` — the numbers the headline needs, read from the sections by ``figures()``
  (``FIGURES`` names and describes each);
* ``headline`` — ``RATIOS``, each a figure divided by a figure or by a constant (the
  seed's 2,800/s): absolute numbers move between machines, ratios much less;
* ``problems`` — ``problems()``: figures missing, anything that does not add up (a figure
  that is not what its section says, a ratio not computed from the figures, a rung whose
  records are not all in its topic), steps over their bound, steps that failed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from labsupport.bench import producer_rungs as rungs
from labsupport.ingest.producer_ladder import SEED_FIXED_RATE

#: name -> (step, what it is)
FIGURES = {
    "producer_blocking_per_s": ("producers", f"{rungs.BLOCKING}, records/s"),
    "producer_seed_fix_per_s": ("producers", f"{rungs.SEED_FIX} (the seed's fix), records/s"),
    "producer_batched_per_s": ("producers", f"{rungs.BATCHED} (the fixed producer), records/s"),
    "producer_librdkafka_per_s": ("producers", f"{rungs.LIBRDKAFKA}, records/s"),
    "producer_java_per_s": ("producers", f"{rungs.JAVA} (the ceiling), records/s"),
    "sink_both_tables_per_s": ("sink_ceiling", "CassandraSink alone, both tables, events/s"),
    "sink_one_table_per_s": ("sink_ceiling", "CassandraSink alone, events_by_bucket only, events/s"),
    "end_to_end_per_s": ("end_to_end", "end to end, best sustained events/s (capacity if none sustained)"),
    "end_to_end_p50_s": ("end_to_end", "event -> row latency p50 at that rate, s"),
    "end_to_end_p99_s": ("end_to_end", "event -> row latency p99 at that rate, s"),
    "burst_events": ("end_to_end", "events in the 10x burst"),
    "burst_drain_s": ("end_to_end", "burst: last event sent -> last event committed, s"),
    "recovery_s": ("recovery", "kill -9 of `stream` -> its first committed batch, s"),
}
NON_NEGATIVE = {"burst_drain_s"}  # every other figure is a positive number

#: name -> (numerator figure, denominator figure or constant, what it says)
RATIOS = {
    "end_to_end_over_sink_ceiling": ("end_to_end_per_s", "sink_both_tables_per_s",
                                     "end to end ÷ the sink's own ceiling (both tables)"),
    "fixed_over_blocking_producer": ("producer_batched_per_s", "producer_blocking_per_s",
                                     "fixed producer ÷ blocking producer"),
    "seed_fix_over_blocking_producer": ("producer_seed_fix_per_s", "producer_blocking_per_s",
                                        "the seed's thread pool ÷ blocking producer"),
    "fixed_producer_over_seed": ("producer_batched_per_s", SEED_FIXED_RATE, "fixed producer ÷ the seed's 2.8k/s"),
    "end_to_end_over_seed": ("end_to_end_per_s", SEED_FIXED_RATE, "end to end ÷ the seed's 2.8k/s"),
    "java_ceiling_over_fixed_producer": ("producer_java_per_s", "producer_batched_per_s",
                                         "Java ProducerPerformance ÷ fixed producer"),
    "one_table_over_both_tables": ("sink_one_table_per_s", "sink_both_tables_per_s",
                                   "sink ceiling, one table ÷ both tables"),
}
RATIO_DIGITS = 3


# ---- figures and ratios ------------------------------------------------------------------------
def headline_rung(e2e: dict) -> dict | None:
    """The end-to-end rung the headline quotes: the best sustained one, else the one that
    committed most (the stream's capacity)."""
    ladder = e2e.get("rungs") or []
    sustained = [r for r in ladder if r.get("sustained")]
    return max(sustained or ladder, key=lambda r: r["throughput"], default=None)


def end_to_end_basis(e2e: dict) -> str | None:
    """What ``end_to_end_per_s`` is: a sustained rate, or what the stream committed when it kept up with none."""
    rung = headline_rung(e2e)
    if rung is None:
        return None
    return (f"the best sustained rung ({rung['target_rate']:,.0f}/s in)" if rung.get("sustained") else
            f"no rung was sustained: what the stream committed at {rung['target_rate']:,.0f}/s in (its capacity "
            "only if that input exceeded it)")


def figures(sections: dict) -> dict[str, float | None]:
    """Every ``FIGURES`` entry read from the steps' sections (None where a step gave none)."""
    by_rung = {r["name"]: r.get("per_second") for r in (sections.get("producers") or {}).get("rungs", [])}
    sink = sections.get("sink_ceiling") or {}
    e2e = sections.get("end_to_end") or {}
    rung = headline_rung(e2e) or {}
    burst = e2e.get("burst") or {}
    return {
        "producer_blocking_per_s": by_rung.get(rungs.BLOCKING),
        "producer_seed_fix_per_s": by_rung.get(rungs.SEED_FIX),
        "producer_batched_per_s": by_rung.get(rungs.BATCHED),
        "producer_librdkafka_per_s": by_rung.get(rungs.LIBRDKAFKA),
        "producer_java_per_s": by_rung.get(rungs.JAVA),
        "sink_both_tables_per_s": (sink.get("both_tables") or {}).get("events_per_s"),
        "sink_one_table_per_s": (sink.get("one_table") or {}).get("events_per_s"),
        "end_to_end_per_s": rung.get("throughput"),
        "end_to_end_p50_s": (rung.get("latency_s") or {}).get("p50"),
        "end_to_end_p99_s": (rung.get("latency_s") or {}).get("p99"),
        "burst_events": burst.get("sent"),
        "burst_drain_s": burst.get("catch_up_s"),
        "recovery_s": (sections.get("recovery") or {}).get("seconds"),
    }


def _usable(value, name: str) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    return value >= 0 if name in NON_NEGATIVE else value > 0


def ratios(figs: dict[str, float | None]) -> dict[str, float | None]:
    """``RATIOS`` from the figures; None where a figure it needs is missing."""
    out = {}
    for name, (num, den, _) in RATIOS.items():
        n = figs.get(num)
        d = den if isinstance(den, (int, float)) else figs.get(den)
        ok = _usable(n, num) and _usable(d, den if isinstance(den, str) else "")
        out[name] = round(n / d, RATIO_DIGITS) if ok else None
    return out


# ---- the check ----------------------------------------------------------------------------------
def _accounting(sections: dict) -> list[str]:
    """What the real systems say was done, against what each step claims."""
    out = []
    for r in (sections.get("producers") or {}).get("rungs", []):
        if r.get("in_topic") != r.get("records"):
            out.append(f"producers: {r['name']} acknowledged {r.get('records')} records, its topic holds {r.get('in_topic')}")
    for variant, v in (sections.get("sink_ceiling") or {}).items():
        if any(w != v.get("rows") for w in v.get("written", [])):
            out.append(f"sink ceiling: {variant} wrote {v.get('written')} of {v.get('rows')} rows per batch")
    e2e = sections.get("end_to_end") or {}
    for r in [*(e2e.get("rungs") or []), *([e2e["burst"]] if e2e.get("burst") else [])]:
        if r.get("landed") != r.get("sent"):
            out.append(f"end to end: at {r.get('target_rate')}/s {r.get('sent')} events sent, {r.get('landed')} committed")
    return out


def problems(report: dict) -> dict[str, list[str]]:
    figs, sections = report.get("figures") or {}, report.get("sections") or {}
    missing = [name for name in FIGURES if not _usable(figs.get(name), name)]
    inconsistent = [f"figure {k}: the report says {figs.get(k)}, its section {v}"
                    for k, v in figures(sections).items() if figs.get(k) != v]
    for name, value in ratios(figs).items():
        stated = (report.get("headline") or {}).get(name)
        if value is None and stated is None:
            continue
        if value is None or stated is None or not math.isclose(stated, value, rel_tol=1e-9, abs_tol=10 ** -RATIO_DIGITS):
            inconsistent.append(f"ratio {name}: the report says {stated}, its figures give {value}")
    inconsistent += _accounting(sections)
    over, failed = [], []
    for step in report.get("steps") or []:
        if step["over_bound"] != (step["seconds"] > step["bound_s"]):
            inconsistent.append(f"step {step['name']}: {step['seconds']} s against a {step['bound_s']} s bound "
                                f"is marked over_bound={step['over_bound']}")
        if step["over_bound"]:
            over.append(f"{step['name']}: {step['seconds']:.0f} s, bound {step['bound_s']:.0f} s")
        if step["error"]:
            failed.append(f"{step['name']}: {step['error']}")
    return {"missing": missing, "inconsistent": inconsistent, "over_bound": over, "failed": failed}


#: more than this share of the cores busy before a run: its figures understate the stack
QUIET_SHARE = 0.25
NOT_QUIET = ("not a quiet machine: every figure of this run is low; let the stack settle (a DAG catching "
             "up on missed minutes, a stream draining a backlog) or stop what else runs, then bench again")


def not_quiet(cores_busy: float | None, cpus: int | None) -> bool:
    return cores_busy is not None and cores_busy > QUIET_SHARE * (cpus or 1)


def complete(found: dict[str, list[str]]) -> bool:
    """Every figure there, everything adding up, no step failed (a step over its bound is
    marked, not a gap: its figures are still measured)."""
    return not (found["missing"] or found["inconsistent"] or found["failed"])


def build(sections: dict, steps: list[dict], **about) -> dict:
    """The report: ``about`` (mode, machine, when, sizes, services), steps, sections,
    figures, headline and problems."""
    figs = figures(sections)
    out = {"bench": "suite", **about, "steps": steps, "sections": sections, "figures": figs,
           "headline": ratios(figs), "end_to_end_basis": end_to_end_basis(sections.get("end_to_end") or {})}
    out["problems"] = problems(out)
    out["complete"] = complete(out["problems"])
    return out


# ---- the files ------------------------------------------------------------------------------------
def _num(v) -> str:
    if v is None:
        return "**missing**"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3f}"


def _load_before(m: dict) -> list[str]:
    busy = m.get("cores_busy_before")
    if busy is None:
        return []
    line = f"Before the run, {busy:.2f} of {m.get('cpus')} cores were busy"
    return [f"**{line}: {NOT_QUIET}.**" if not_quiet(busy, m.get("cpus")) else f"{line}.", ""]


def markdown(report: dict) -> str:
    from labsupport.bench import stream as stream_bench

    m = report.get("machine") or {}
    lines = [f"# `lab bench` — {report.get('when')} ({report.get('mode')} sizes)", "",
             f"Machine: {m.get('cpus')} CPUs, {m.get('ram_gib')} GiB RAM, Linux {m.get('kernel')}, "
             f"Python {m.get('python')} ({m.get('host')}). Services running: "
             f"{', '.join(report.get('services_running') or []) or 'none'}.", "",
             *_load_before(m),
             "## Headline (ratios)", "", "| ratio | value | from |", "|---|---|---|"]
    for name, (num, den, what) in RATIOS.items():
        v = report["headline"].get(name)
        lines.append(f"| {what} | {'**missing**' if v is None else f'{v:,.2f}'} | "
                     f"`{num}` ÷ {f'`{den}`' if isinstance(den, str) else f'{den:,}'} |")
    if report.get("end_to_end_basis"):
        lines += ["", f"The end-to-end figure: {report['end_to_end_basis']}."]
    lines += ["", "## Figures", "", "| step | figure | value |", "|---|---|---|"]
    for name, (step, what) in FIGURES.items():
        lines.append(f"| {step.replace('_', ' ')} | {what} (`{name}`) | {_num(report['figures'].get(name))} |")
    lines += ["", "## Steps", "", "| step | seconds | bound s | status |", "|---|---|---|---|"]
    for s in report["steps"]:
        status = f"FAILED: {s['error']}" if s["error"] else "over its bound" if s["over_bound"] else "ok"
        lines.append(f"| {s['name'].replace('_', ' ')} | {s['seconds']:.1f} | {s['bound_s']:.0f} | {status} |")
    e2e = report["sections"].get("end_to_end")
    if e2e and e2e.get("rungs"):
        lines += ["", "## End to end: the rate ladder", "", stream_bench.table(e2e)]
    rec = report["sections"].get("recovery")
    if rec:
        lines += ["", f"## Recovery: {rec['seconds']} s ({rec['until']}; the service was {rec['service_was']})", "",
                  "| phase | seconds |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rec["phases_s"].items()]
    found = report["problems"]
    lines += ["", "## Problems", ""]
    lines += [f"- {kind.replace('_', ' ')}: {p}" for kind, ps in found.items() for p in ps] or ["none"]
    if report.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in report["plots"]]
    return "\n".join(lines) + "\n"


def write(report: dict, folder: Path) -> Path:
    """report.json, report.md and the plots into ``folder``."""
    from labsupport.bench import plots

    folder.mkdir(parents=True, exist_ok=True)
    report["plots"] = plots.write_all(report, folder)
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (folder / "report.md").write_text(markdown(report))
    return folder
