"""`lab bench` (all): every speed figure of the pipeline in one run on the running stack.

Steps, in order, each timed against a bound and printed as it goes:

1. producers    — lesson 06's producer ladder (``bench.producer_rungs``)
2. sink ceiling — the stream's own ``CassandraSink`` alone, both tables and one (``bench.sink_ceiling``)
3. end to end   — the stream's rate ladder, then a 10x burst and its drain (``bench.stream``)
4. recovery     — kill -9 of the `stream` service to its first committed batch (``bench.recovery``)

A step that fails is recorded with its error and the run goes on: one run yields every
figure it can. ``bench.report`` turns the sections into figures, ratios and a check of
both, and writes JSON, markdown and plots under ``<lab home>/bench/<timestamp>/``.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from labsupport.bench import report as bench_report
from labsupport.bench import startup
from labsupport.config import LabConfig, get_config

STEPS = ("producers", "sink_ceiling", "end_to_end", "recovery")
#: the consumer group the benchmark's streams commit their offsets to: never the learner's stream's
BENCH_GROUP = "streamlab-bench"


@dataclass(frozen=True)
class Sizes:
    """How big each step is, and the seconds each may take (``bounds_s``)."""

    producer_budget_s: float       # per producer rung
    producer_sample: int           # events at most per rung
    java_records: int              # ProducerPerformance's records
    sink_rows: int                 # rows of the synthetic batch
    sink_repeats: int              # batches per variant (the median is reported)
    rates: tuple[float, ...]       # the end-to-end ladder, events/s
    rung_s: float                  # seconds per rate
    warmup_s: float
    trigger: str | None            # None: the stream's own setting
    burst_factor: float            # the burst is this times the first rate ...
    burst_s: float                 # ... for this long
    recovery_feed_rate: float      # events/s into a sandboxed stream during the recovery step
    bounds_s: dict[str, float] = field(default_factory=dict)

    def replace(self, **changes) -> "Sizes":
        return dataclasses.replace(self, **changes)


#: what a reference run uses (~15-20 minutes on the lab machine)
FULL = Sizes(producer_budget_s=10, producer_sample=200_000, java_records=1_000_000, sink_rows=100_000,
             sink_repeats=3, rates=(1000, 2500, 5000, 10000, 20000), rung_s=20, warmup_s=20, trigger=None,
             burst_factor=10, burst_s=10, recovery_feed_rate=200,
             bounds_s={"producers": 180, "sink_ceiling": 300, "end_to_end": 900, "recovery": 240})
#: `lab bench --fast` and the integration test: every step runs, tiny (~1.5 min on an idle machine)
FAST = Sizes(producer_budget_s=1, producer_sample=5_000, java_records=20_000, sink_rows=2_000, sink_repeats=1,
             rates=(300,), rung_s=4, warmup_s=3, trigger="1 second", burst_factor=10, burst_s=2,
             recovery_feed_rate=100,
             bounds_s={"producers": 60, "sink_ceiling": 60, "end_to_end": 180, "recovery": 180})


def timed_step(name: str, bound_s: float, fn: Callable[[], dict], progress: Callable[[str], None],
               clock: Callable[[], float] = time.monotonic) -> tuple[dict, dict | None]:
    """Run one step: ({name, seconds, bound_s, over_bound, error}, its section or None)."""
    t0 = clock()
    section, error = None, None
    try:
        section = fn()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the report; the next step still runs
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        progress(f"  FAILED: {error}")
        progress("".join(traceback.format_exception(exc)[-3:]).rstrip())
    seconds = round(clock() - t0, 1)
    step = {"name": name, "seconds": seconds, "bound_s": bound_s, "over_bound": seconds > bound_s, "error": error}
    return step, section


def run(sizes: Sizes = FULL, mode: str = "full", cfg: LabConfig | None = None,
        progress: Callable[[str], None] = print, out_dir: Path | None = None) -> tuple[dict, Path]:
    """Every step on the running stack; returns (the report, the folder it was written to)."""
    from labsupport import stack
    from labsupport.bench import producer_rungs, recovery, sink_ceiling
    from labsupport.bench import stream as stream_bench

    cfg = cfg or get_config()
    stack.up(["kafka", "cassandra"], cfg=cfg, progress=lambda _m: None)
    when = time.gmtime()
    machine = {**startup.machine(), "cores_busy_before": startup.cores_busy()}
    quiet = not bench_report.not_quiet(machine["cores_busy_before"], machine["cpus"])
    progress(f"before the run: {machine['cores_busy_before']:.2f} of {machine['cpus']} cores busy"
             + ("" if quiet else f" -- {bench_report.NOT_QUIET}"))
    work = {
        "producers": lambda: producer_rungs.measure(cfg, sizes.producer_budget_s, sizes.producer_sample,
                                                    sizes.java_records, progress),
        "sink_ceiling": lambda: sink_ceiling.measure(cfg, sizes.sink_rows, sizes.sink_repeats, progress),
        "end_to_end": lambda: stream_bench.bench_stream(
            list(sizes.rates), sizes.rung_s, sizes.trigger, progress=lambda m: progress(f"  {m}"),
            warmup_s=sizes.warmup_s, burst=(sizes.burst_factor, sizes.burst_s), group_id=BENCH_GROUP),
        "recovery": lambda: recovery.measure(cfg, sizes.bounds_s["recovery"], sizes.recovery_feed_rate, progress,
                                             group_id=BENCH_GROUP),
    }
    steps, sections = [], {}
    for i, name in enumerate(STEPS, 1):
        bound = sizes.bounds_s[name]
        progress(f"[{i}/{len(STEPS)}] {name.replace('_', ' ')} (bound {bound:.0f} s)")
        step, section = timed_step(name, bound, work[name], progress)
        steps.append(step)
        sections[name] = section
        progress(f"[{i}/{len(STEPS)}] {name.replace('_', ' ')}: {'failed' if step['error'] else 'done'} in "
                 f"{step['seconds']:.1f} s{'  (OVER its bound)' if step['over_bound'] else ''}")
    result = bench_report.build(sections, steps, mode=mode, sizes=dataclasses.asdict(sizes),
                                machine=machine, when=time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
                                services_running=sorted(n for n, s in stack.status(cfg=cfg).items()
                                                if s.get("state") == "running"))
    folder = out_dir or cfg.paths.home / "bench" / time.strftime("%Y%m%dT%H%M%SZ", when)
    bench_report.write(result, folder)
    startup.record(cfg, {k: result[k] for k in ("bench", "when", "mode", "machine", "figures", "headline", "complete")}
                   | {"folder": str(folder)})  # the history every bench appends to
    progress(f"report: {folder}/report.md")
    return result, folder
