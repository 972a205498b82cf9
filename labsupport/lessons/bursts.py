"""Bursts and backpressure (lesson 08): a burst into a sandboxed stream, drained under a cap.

`burst_run` starts a stream sandbox with a given ``maxOffsetsPerTrigger`` and trigger,
feeds it a steady baseline, lets it settle, then publishes a burst of current events
*at once* (what a client that buffered a few seconds of a 10x rate flushes) and waits
until the stream has committed a batch reaching past the burst's last offset. One
function for the capped and the uncapped run: only the cap differs.

What each batch held and when it ran is read from the stream's own checkpoint, not
from a metric: ``offsets/<id>`` is written when Spark plans the batch (its end offsets
and its trigger time), ``commits/<id>`` once the sink returned. Rows per batch are the
difference of consecutive end offsets, which ``maxOffsetsPerTrigger`` caps exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from labsupport.config import LabConfig, get_config
from labsupport.events import Profile, events_between
from labsupport.ingest import producers, topics
from labsupport.lessons.audit import AuditReport, audit
from labsupport.lessons.feed import Feeder
from labsupport.lessons.pipeline import paused_pipeline
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.stats import percentile
from labsupport.waits import wait_for


# ---- the arithmetic ----------------------------------------------------------------------------
def predicted_drain_s(backlog: int, cap: int, trigger_s: float, incoming_eps: float = 0.0) -> float:
    """Seconds to work off ``backlog`` records when every trigger takes at most ``cap``:
    ``backlog / (cap / trigger_s - incoming_eps)`` — the cap sets the drain rate, and
    whatever keeps arriving meanwhile (``incoming_eps``) queues behind the backlog.
    Holds while a batch of ``cap`` rows finishes within the trigger; beyond that the
    batches overrun and the drain rate is the stream's capacity instead."""
    rate = cap / trigger_s - incoming_eps
    if rate <= 0:
        return math.inf
    return backlog / rate


@dataclass(frozen=True)
class Batch:
    id: int
    rows: int                       # records in the batch (end offsets minus the previous batch's)
    start: dict[int, int]           # partition -> first offset of the batch
    end: dict[int, int]             # partition -> next offset after the batch
    planned_at: float               # epoch s: Spark's trigger time for the batch
    committed_at: float | None      # epoch s the commit file was written; None: not committed (yet)

    @property
    def seconds(self) -> float | None:
        return None if self.committed_at is None else self.committed_at - self.planned_at


def parse_offsets_file(text: str) -> tuple[float, dict[int, int]]:
    """(trigger time in epoch s, {partition: end offset}) of a checkpoint ``offsets/<id>``
    file: a version line, the batch metadata JSON, then one offsets JSON per source."""
    _version, meta, *sources = text.splitlines()
    ends: dict[int, int] = {}
    for src in sources:
        if src.startswith("{"):
            for parts in json.loads(src).values():
                ends.update({int(p): int(o) for p, o in parts.items()})
    return json.loads(meta)["batchTimestampMs"] / 1000, ends


def batches_from(planned: dict[int, tuple[float, dict[int, int]]], committed: dict[int, float]) -> list[Batch]:
    """Batches in id order from {id: (trigger time, end offsets)} and {id: commit time}.
    The first batch starts at offset 0 (a sandbox topic is new and read from earliest)."""
    out, prev = [], {}
    for bid in sorted(planned):
        at, ends = planned[bid]
        rows = sum(off - prev.get(p, 0) for p, off in ends.items())
        out.append(Batch(bid, rows, {p: prev.get(p, 0) for p in ends}, ends, at, committed.get(bid)))
        prev = ends
    return out


def read_batches(checkpoint: Path) -> list[Batch]:
    """Every batch Spark planned in ``checkpoint``, with its rows and times."""
    cp = Path(checkpoint)
    planned = {int(p.name): parse_offsets_file(p.read_text()) for p in (cp / "offsets").glob("*") if p.name.isdigit()} \
        if (cp / "offsets").is_dir() else {}
    committed = {int(p.name): p.stat().st_mtime for p in (cp / "commits").glob("*") if p.name.isdigit()} \
        if (cp / "commits").is_dir() else {}
    return batches_from(planned, committed)


def reaches(batch: Batch, target: dict[int, int]) -> bool:
    """The batch read every partition up to ``target`` (its end offsets)."""
    return all(batch.end.get(p, 0) >= off for p, off in target.items())


def overlaps(batch: Batch, since: dict[int, int], until: dict[int, int]) -> bool:
    """The batch holds some of the records between offsets ``since`` and ``until``."""
    return any(batch.end.get(p, 0) > lo and batch.start.get(p, 0) < until.get(p, lo) for p, lo in since.items())


# ---- the run -------------------------------------------------------------------------------
@dataclass
class BurstRun:
    name: str
    cap: int
    trigger_s: float
    baseline_eps: float
    burst_events: int
    topic: str = ""
    keyspace: str = ""
    published_at: float = 0.0       # epoch s the burst's publish started
    publish_s: float = 0.0          # how long publishing it took
    before_burst: dict[int, int] = field(default_factory=dict)  # end offsets just before it
    after_burst: dict[int, int] = field(default_factory=dict)   # ...and just after
    drained_at: float = 0.0         # commit time of the first batch past the burst's last offset
    batches: list[Batch] = field(default_factory=list)
    event_lag_s: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, event-time lag)
    offset_lag: list[tuple[float, float]] = field(default_factory=list)   # (epoch s, consumer lag)
    lag_before_s: float = 0.0       # event-time lag while only the baseline flowed
    restarts: float = 0.0           # query_restarts_total at the end (the query failed and restarted)
    report: AuditReport | None = None

    @property
    def predicted_drain_s(self) -> float:
        return predicted_drain_s(self.burst_events, self.cap, self.trigger_s, self.baseline_eps)

    @property
    def drain_s(self) -> float:
        return self.drained_at - self.published_at

    @property
    def burst_batches(self) -> list[Batch]:
        """The batches that held burst records: from the first past the pre-burst end to
        the first that reached the post-burst end."""
        return [b for b in self.batches if b.committed_at is not None and overlaps(b, self.before_burst, self.after_burst)]

    @property
    def first_rows_s(self) -> float:
        """From the burst's publish until the first batch holding some of it committed:
        how long its first events waited to land."""
        return min(b.committed_at for b in self.burst_batches) - self.published_at

    @property
    def max_rows(self) -> int:
        return max((b.rows for b in self.batches), default=0)

    @property
    def lag_peak_s(self) -> float:
        return max((v for _, v in self.event_lag_s), default=0.0)

    def summary(self) -> dict:
        durations = [b.seconds for b in self.burst_batches]
        return {"run": self.name, "cap": self.cap, "trigger s": self.trigger_s, "burst": self.burst_events,
                "predicted drain s": round(self.predicted_drain_s, 1), "drain s": round(self.drain_s, 1),
                "burst batches": len(self.burst_batches), "max rows/batch": self.max_rows,
                "longest batch s": round(max(durations, default=0.0), 1),
                "batch p50 s": round(percentile(sorted(durations), 50), 1) if durations else None,
                "first rows landed s": round(self.first_rows_s, 1),
                "event-time lag before s": round(self.lag_before_s, 1), "peak s": round(self.lag_peak_s, 1),
                "audit clean": self.report.clean if self.report else None}


def _end_offsets(topic: str, cfg: LabConfig) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id="lab-burst")
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def burst_run(name: str, cap: int, trigger_s: float, burst_events: int, burst_seconds: int = 5,
              baseline_eps: float = 50, settle_batches: int = 2, timeout: float = 300,
              cfg: LabConfig | None = None, progress=print) -> BurstRun:
    """A sandboxed stream ``name`` capped at ``cap`` offsets per trigger of ``trigger_s``
    seconds, a baseline of ``baseline_eps`` events/s, then ``burst_events`` events of the
    last ``burst_seconds`` seconds published at once; returns what it measured, audited.
    The production pipeline is paused while it measures (its runs would share the two
    cores with the drain being timed) and flows again afterwards if it flowed before."""
    cfg = cfg or get_config()
    with paused_pipeline(cfg, progress):
        return _burst_run(name, cap, trigger_s, burst_events, burst_seconds, baseline_eps, settle_batches,
                          timeout, cfg, progress)


def _burst_run(name: str, cap: int, trigger_s: float, burst_events: int, burst_seconds: int,
               baseline_eps: float, settle_batches: int, timeout: float, cfg: LabConfig, progress) -> BurstRun:
    svc = stream_sandbox(name, cfg=cfg, progress=progress, max_offsets_per_trigger=cap,
                         trigger=f"{trigger_s:g} seconds", starting_offsets="earliest")
    s = svc.settings
    run = BurstRun(name, cap, trigger_s, baseline_eps, burst_events, s.topic, s.keyspace)
    baseline = Profile(rate=baseline_eps, burst_every=0, seed=f"{name}-{s.topic}")
    burst = Profile(rate=burst_events / burst_seconds, burst_every=0, seed=f"{name}-burst-{s.topic}")

    def sample() -> None:
        now = time.time()
        run.event_lag_s.append((now, svc.metric("event_time_lag_seconds", down=0.0)))
        run.offset_lag.append((now, svc.metric("consumer_lag_offsets", down=0.0)))

    def committed() -> int:
        return sum(1 for b in read_batches(svc.checkpoint) if b.committed_at is not None)

    with Feeder(s.topic, baseline, cfg) as feed:
        wait_for(lambda: committed() >= settle_batches, 180, f"{settle_batches} batches of the baseline")
        # two more triggers of baseline only: the event-time lag it settles at
        settled = committed() + 2

        def baseline_settled() -> bool:
            sample()
            return committed() >= settled

        wait_for(baseline_settled, 60, "the baseline to settle", interval=0.5)
        run.lag_before_s = max(v for _, v in run.event_lag_s[-3:])
        run.event_lag_s.clear(), run.offset_lag.clear()
        end = int(time.time())
        events = list(events_between(end - burst_seconds, end, burst))
        run.before_burst = _end_offsets(s.topic, cfg)
        run.published_at = time.time()
        producers.publish(events, s.topic, cfg=cfg)
        run.publish_s = time.time() - run.published_at
        run.after_burst = _end_offsets(s.topic, cfg)
        progress(f"{name}: {len(events):,} events published at once in {run.publish_s:.1f} s; "
                 f"the stream takes at most {cap:,} per {trigger_s:g} s trigger")

        def drained():
            sample()
            done = [b for b in read_batches(svc.checkpoint) if b.committed_at is not None and reaches(b, run.after_burst)]
            return done[0] if done else None

        run.drained_at = wait_for(drained, timeout, f"the stream to work off the burst of {len(events):,}",
                                  interval=0.5).committed_at
        sample()
        run.restarts = svc.metric("query_restarts_total", down=0.0)
        since, until = feed.stop()
    topics.wait_caught_up(s.topic, s.group_id, timeout=180, cfg=cfg)
    run.batches = read_batches(svc.checkpoint)
    run.report = audit(since, until, keyspace=s.keyspace, settings=s, topic=s.topic, published_to=s.topic, cfg=cfg)
    progress(f"{name}: drained in {run.drain_s:.1f} s (the formula: {run.predicted_drain_s:.1f} s), "
             f"{len(run.burst_batches)} burst batches of at most {run.max_rows:,} rows, "
             f"audit {'clean' if run.report.clean else 'NOT clean'}")
    return run
