"""`lab bench stream`: sustained end-to-end throughput and latency of the stream, and
where the machine's CPU goes.

A rate ladder on the running stack. For each input rate the load generator (its own
process) produces events stamped with the moment they were sent, for a fixed time,
into a scratch topic; the real stream job (this process, same code as the `stream`
service) writes them to a scratch keyspace. Per rung it records:

* sustained or not — a stream that keeps up has a latency that does not grow: the
  rung is *sustained* when the median latency of its last third of events exceeds
  that of its first third by less than ``SUSTAINED_GROWTH_S`` and p99 stays under
  ``SUSTAINED_P99_S`` (a stream short by 10 % of the input grows ~2 s in 20 s), and
  the rows it committed per second reach ``SUSTAINED_KEEP_UP`` of the rate actually
  sent (with long triggers a few big batches can hide a slow growth in 30 s);
* throughput — rows committed per second between the rung's first and last commit
  (``commit_rate``): the input rate while sustained, the stream's capacity when not.
  ``end_to_end_rate`` (events / (last commit - first event sent)) is also recorded;
* latency — event time -> the moment Cassandra confirmed its batch (the row is
  readable from then on), exact p50/p95/p99/max over every event;
* where the time goes — Spark's own per-trigger phases (``durationMs``), the
  Arrow hand-over and the Cassandra write inside ``foreachBatch``, and CPU seconds
  per process (Kafka, Cassandra, Spark's JVM, the Python driver, the generator) per
  1,000 events: on a 2-core machine the sum says what the ceiling is.

The scratch topic, keyspace and checkpoint are the benchmark's own and are removed
afterwards; the learner's data is never touched.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict

import psutil

from labsupport.bench import startup as bench, cpuprof
from labsupport import stack
from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError
from labsupport.stats import percentile

KEYSPACE = "streamlab_bench"
PARTITIONS = 6  # as the lab's events topic
SUSTAINED_P99_S = 10.0
SUSTAINED_GROWTH_S = 2.0
SUSTAINED_KEEP_UP = 0.95
WARMUP_S = 20.0  # the JVMs' JIT compilers burn CPU for the first tens of seconds
DEFAULT_RATES = (1000, 2500, 5000, 10000, 20000)
SPARK_PHASES = ("latestOffset", "queryPlanning", "walCommit", "addBatch", "commitOffsets", "triggerExecution")


class BenchFailed(LabError):
    """The benchmark could not complete a measurement."""


# ---- CPU accounting ----------------------------------------------------------------------
def bench_processes(cfg: LabConfig) -> dict[str, list[int]]:
    """Every process whose CPU the benchmark accounts for, by label: each running lab
    service (its whole process group), this process (the stream's Python driver), its
    Spark JVM and Spark's Python workers. The load generator reports its own CPU."""
    from labsupport.stack import procs, services

    out: dict[str, list[int]] = {}
    for name in services.running(cfg):
        rec = services.service(name, cfg).record()
        if rec is not None:  # it may have stopped since
            out[name] = [p.pid for p in procs.group_members(rec.pgid)]
    me = psutil.Process()
    claimed = {pid for pids in out.values() for pid in pids}
    out["stream driver (python)"] = [me.pid]
    # In a notebook the kernel started the services (lesson 09's reset_to): counted again
    # as its children, the brokers' CPU showed 2.33 of 2 cores busy
    kids = cpuprof.children_by_name(me, exclude="labsupport.bench.loadgen", claimed=claimed)
    out["spark jvm"] = kids.get("java", [])
    out["spark python workers"] = [pid for name, pids in kids.items() if name.startswith("python") for pid in pids]
    return out


# ---- one rung ------------------------------------------------------------------------------
class BatchLog:
    """Collects the stream's committed batches (a StreamJob batch listener)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.batches: list[dict] = []

    def __call__(self, result: dict) -> None:
        with self.lock:
            self.batches.append({k: result[k] for k in ("batch_id", "rows", "committed_ms", "event_ms",
                                                         "handover_s", "write_s", "replayed")})

    def rows(self) -> int:
        with self.lock:
            return sum(b["rows"] for b in self.batches if not b["replayed"])

    def take(self) -> list[dict]:
        with self.lock:
            out, self.batches = self.batches, []
            return out


def generate(cfg: LabConfig, topic: str, rate: float, seconds: float, run_id: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "labsupport.bench.loadgen", "--bootstrap", cfg.bootstrap_servers, "--topic", topic,
            "--rate", str(rate), "--seconds", str(seconds), "--run", run_id]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_landed(log: BatchLog, want: int, deadline_s: float, progress) -> None:
    """Poll the batch log until ``want`` rows were committed, or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    last_say = 0.0
    while (have := log.rows()) < want:
        if time.monotonic() > deadline:
            raise BenchFailed(f"only {have} of {want} events reached Cassandra within {deadline_s:.0f}s",
                              "check `lab logs cassandra` and the stream's log; the stack may be overloaded")
        if time.monotonic() - last_say > 10:
            progress(f"  waiting for the stream: {have}/{want} events committed")
            last_say = time.monotonic()
        time.sleep(0.2)


def summarize_rung(rate: float, gen: dict, batches: list[dict], progress_rows: list[dict],
                   cpu: dict[str, dict[str, float]], wall_s: float) -> dict:
    """One rung's numbers; ``cpu`` is {process label: {thread family: cpu seconds}}."""
    by_time = sorted((ms, (b["committed_ms"] - ms) / 1000) for b in batches if not b["replayed"] for ms in b["event_ms"])
    latencies = sorted(lat for _, lat in by_time)
    growth = latency_growth([lat for _, lat in by_time])
    landed = len(latencies)
    last_commit = max(b["committed_ms"] for b in batches)
    committed_rate = commit_rate(batches)
    throughput = committed_rate or landed / max((last_commit - gen["first_ms"]) / 1000, 1e-3)
    keeps_up = committed_rate is None or committed_rate >= SUSTAINED_KEEP_UP * gen["send_rate"]
    phases = {ph: round(sum(p["durationMs"].get(ph, 0) for p in progress_rows) / max(len(progress_rows), 1))
              for ph in SPARK_PHASES}
    n = max(len(batches), 1)
    per_label = cpuprof.totals(cpu)
    cpu_total = sum(per_label.values())
    per_1k = (lambda secs: round(secs / landed * 1e6)) if landed else (lambda secs: None)
    p99 = percentile(latencies, 99)
    return {
        "target_rate": rate, "sent": gen["sent"], "send_rate": gen["send_rate"], "landed": landed,
        "throughput": round(throughput, 1),
        "sustained": bool(growth < SUSTAINED_GROWTH_S and p99 <= SUSTAINED_P99_S and keeps_up),
        "latency_growth_s": round(growth, 2),
        "end_to_end_rate": round(landed / max((last_commit - gen["first_ms"]) / 1000, 1e-3), 1),
        "latency_s": {"p50": round(percentile(latencies, 50), 2), "p95": round(percentile(latencies, 95), 2),
                      "p99": round(p99, 2), "max": round(latencies[-1], 2)},
        "catch_up_s": round((last_commit - gen["last_ms"]) / 1000, 2),
        "batches": len(batches), "rows_per_batch": round(landed / n),
        "foreach_batch_s": {"handover": round(sum(b["handover_s"] for b in batches) / n, 3),
                            "write": round(sum(b["write_s"] for b in batches) / n, 3)},
        "spark_trigger_ms": phases,
        "cpu": {"cores_busy": round(cpu_total / wall_s, 2),
                "ms_per_1k_events": {k: per_1k(v) for k, v in sorted(per_label.items(), key=lambda kv: -kv[1])
                                     if v > 0.05},
                "top_threads_ms_per_1k_events": {k: [(fam, per_1k(v)) for fam, v in cpuprof.top(cpu[k])]
                                                 for k, v in per_label.items() if v > 0.05 and len(cpu[k]) > 1}},
    }


def latency_growth(latencies_in_event_order: list[float]) -> float:
    """Median latency of the last third of the events minus that of the first third."""
    n = len(latencies_in_event_order)
    if n < 3:
        return 0.0
    third = n // 3
    first = sorted(latencies_in_event_order[:third])
    last = sorted(latencies_in_event_order[-third:])
    return percentile(last, 50) - percentile(first, 50)


def commit_rate(batches: list[dict]) -> float | None:
    """Rows committed per second over the rung's full batches.

    While the stream keeps up this equals the input rate (each batch carries one trigger
    interval of input); when it falls behind, batches run back to back and it is the
    stream's capacity. The first and the last batch are left out: the first one's rows
    arrived before the span starts, and the last one is partial (the generator stopped
    mid-interval) but still takes a whole cycle — counting it biases the rate ~7 % low.
    None with fewer than three batches."""
    fresh = sorted((b for b in batches if not b["replayed"]), key=lambda b: b["committed_ms"])
    if len(fresh) < 3 or fresh[-2]["committed_ms"] == fresh[0]["committed_ms"]:
        return None
    return sum(b["rows"] for b in fresh[1:-1]) / ((fresh[-2]["committed_ms"] - fresh[0]["committed_ms"]) / 1000)


def _progress_since(query, batch_id: int) -> list[dict]:
    return [p for p in (query.recentProgress or []) if p["batchId"] > batch_id and p["numInputRows"] > 0]


# ---- the ladder ------------------------------------------------------------------------------
def bench_stream(rates=DEFAULT_RATES, seconds: float = 30.0, trigger: str | None = None,
                 progress=print, stop_when_behind: bool = True, warmup_s: float = WARMUP_S,
                 burst: tuple[float, float] | None = None, **setting_overrides) -> dict:
    """The ladder; with ``burst=(factor, seconds)`` one more rung after it, at ``factor``
    times the first rate for ``seconds``, whose ``catch_up_s`` is the burst's drain time."""
    from labsupport import schema
    from labsupport.ingest import topics
    from labsupport.stream.job import StreamJob
    from labsupport.stream.settings import StreamSettings

    cfg = get_config()
    stack.up(["kafka", "cassandra"], cfg=cfg, progress=progress)
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-stream-{run_id}"
    scratch = cfg.paths.home / "bench" / f"stream-{run_id}"
    settings = StreamSettings.from_env(
        topic=topic, keyspace=KEYSPACE, query_name=f"bench_{run_id}", checkpoint=str(scratch / "checkpoint"),
        starting_offsets="earliest", **({"trigger": trigger} if trigger else {}), **setting_overrides)
    progress(f"stream bench {run_id}: topic {topic}, keyspace {KEYSPACE}, trigger {settings.trigger}, "
             f"maxOffsetsPerTrigger {settings.max_offsets_per_trigger}")
    topics.ensure_topic(topic, partitions=PARTITIONS, cfg=cfg)
    schema.ensure(cfg, KEYSPACE)
    log = BatchLog()
    job = StreamJob(cfg, settings)
    job.batch_listeners.append(log)
    rungs = []
    try:
        job.start()
        warm = min(rates[0], 2000)
        progress(f"warm-up: {warm:,.0f}/s for {warmup_s:.0f}s (JIT compilation, connections, first batches)")
        _rung(cfg, job, log, warm, warmup_s, f"{run_id}w", topic, progress)
        for rate in rates:
            progress(f"rate {rate:,}/s for {seconds:.0f}s ...")
            r = _rung(cfg, job, log, rate, seconds, f"{run_id}r{rate}", topic, progress)
            rungs.append(r)
            progress(f"  -> {r['throughput']:,.0f} events/s committed, p50 {r['latency_s']['p50']}s "
                     f"p99 {r['latency_s']['p99']}s, {r['cpu']['cores_busy']} cores busy"
                     f"{'' if r['sustained'] else '  (NOT sustained)'}")
            if stop_when_behind and not r["sustained"]:
                break
        if burst:
            factor, burst_s = burst
            progress(f"burst: {factor:g}x {rates[0]:,}/s = {rates[0] * factor:,.0f}/s for {burst_s:.0f}s ...")
            burst_rung = {"factor": factor, "base_rate": rates[0],
                          **_rung(cfg, job, log, rates[0] * factor, burst_s, f"{run_id}b", topic, progress)}
            progress(f"  -> drained {burst_rung['catch_up_s']}s after the burst's last event")
    finally:
        job.stop()
        _cleanup(cfg, topic, scratch)
    best = max((r for r in rungs if r["sustained"]), key=lambda r: r["throughput"], default=None)
    result = {"bench": "stream", "seconds_per_rate": seconds, "trigger": settings.trigger,
              "max_offsets_per_trigger": settings.max_offsets_per_trigger, "batch_rows": settings.batch_rows,
              "write_by_source": settings.write_by_source, "consistency": settings.consistency,
              "best_sustained_rate": best["target_rate"] if best else None,
              "best_sustained_throughput": best["throughput"] if best else None,
              "services_running": sorted(s for s, st in stack.status(cfg=cfg).items() if st.get("state") == "running"),
              "rungs": rungs, "burst": burst_rung if burst else None, "machine": bench.machine(),
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    bench.record(cfg, result)
    return result


def _rung(cfg: LabConfig, job, log: BatchLog, rate: float, seconds: float, run_id: str, topic: str,
          progress) -> dict:
    log.take()
    last_batch = max((p["batchId"] for p in (job.query.recentProgress or [])), default=-1)
    watched = bench_processes(cfg)
    cpu0, t0 = cpuprof.snapshot(watched), time.monotonic()
    proc = generate(cfg, topic, rate, seconds, run_id)
    out, err = proc.communicate(timeout=seconds * 4 + 120)
    if proc.returncode != 0:
        raise BenchFailed(f"the load generator failed: {err.strip().splitlines()[-1:] or proc.returncode}",
                          "check `lab status kafka`")
    gen = json.loads(out.strip().splitlines()[-1])
    wait_landed(log, gen["sent"], deadline_s=max(120.0, seconds * 10), progress=progress)
    wall = time.monotonic() - t0
    cpu = cpuprof.delta(cpu0, cpuprof.snapshot(watched))
    cpu["load generator"] = {"loadgen": gen["cpu_s"]}
    return summarize_rung(rate, gen, log.take(), _progress_since(job.query, last_batch), cpu, wall)


def _cleanup(cfg: LabConfig, topic: str, scratch) -> None:
    from labsupport import schema
    from labsupport.ingest import topics

    try:
        topics.delete_topic(topic, cfg=cfg)
    except Exception as exc:  # a leftover scratch topic is harmless; say so and move on
        print(f"bench: could not delete scratch topic {topic}: {exc}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:  # the benchmark's own keyspace: a ladder leaves millions of rows behind
        cluster, session = schema.connect(cfg)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=60)
        finally:
            cluster.shutdown()
    except Exception as exc:
        print(f"bench: could not drop the scratch keyspace {KEYSPACE}: {exc}")


def table(result: dict) -> str:
    """The ladder as a markdown table (what docs/benchmarks.md quotes)."""
    lines = ["| input ev/s | committed ev/s | p50 s | p99 s | rows/batch | hand-over s | write s | cores busy | sustained |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rungs"]:
        lines.append(f"| {r['target_rate']:,.0f} | {r['throughput']:,.0f} | {r['latency_s']['p50']} | "
                     f"{r['latency_s']['p99']} | {r['rows_per_batch']:,} | {r['foreach_batch_s']['handover']} | "
                     f"{r['foreach_batch_s']['write']} | {r['cpu']['cores_busy']} | {'yes' if r['sustained'] else 'no'} |")
    return "\n".join(lines)


def cpu_table(result: dict) -> str:
    per = defaultdict(dict)
    for r in result["rungs"]:
        for k, v in r["cpu"]["ms_per_1k_events"].items():
            per[k][r["target_rate"]] = v
    rates = [r["target_rate"] for r in result["rungs"]]
    lines = ["| CPU ms per 1,000 events | " + " | ".join(f"{x:,.0f}/s" for x in rates) + " |",
             "|---|" + "---|" * len(rates)]
    for k, vals in sorted(per.items(), key=lambda kv: -max(kv[1].values())):
        lines.append(f"| {k} | " + " | ".join(str(vals.get(x, "")) for x in rates) + " |")
    last = result["rungs"][-1] if result["rungs"] else None
    if last:
        lines += ["", f"Busiest threads at {last['target_rate']:,.0f}/s (CPU ms per 1,000 events):"]
        for label, fams in last["cpu"]["top_threads_ms_per_1k_events"].items():
            lines.append(f"- {label}: " + ", ".join(f"{fam} {ms}" for fam, ms in fams))
    return "\n".join(lines)
