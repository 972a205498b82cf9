"""Writes that fail while Cassandra stays up, for the counter lesson (05).

`unavailable_writes(keyspace)` raises the keyspace's replication factor to 3 on the
lab's single node: every write at ``LOCAL_QUORUM`` (the stream's consistency) then
fails with *Unavailable* — Cassandra cannot find two replicas — while the node, its CQL
port and its own metrics stay up (``cassandra_clientrequest_unavailables_total``
climbs). Leaving the block puts the replication factor back and writes succeed again.
Unlike killing Cassandra, the dashboard's *Cassandra writes/s* panel keeps reporting,
so the learner can watch Cassandra's view and the stream's claim disagree.

`CounterExperiment` is one run of the stream through such an outage with the
counter bumped before or after the write, and the write's error raised (Spark retries
the batch) or swallowed (the seed's bug: Spark commits the batch, its rows are lost):
the broken and the fixed runs are the same code with ``count_before_write`` and
``swallow_write_errors`` switched.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from labsupport import schema
from labsupport.config import LabConfig, get_config
from labsupport.events import Profile
from labsupport.lessons.audit import AuditReport, audit_fed_stream
from labsupport.lessons.feed import Feeder
from labsupport.lessons.reads import count_rows
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.waits import wait_for


def set_replication(keyspace: str, factor: int, cfg: LabConfig | None = None) -> None:
    if keyspace in ("streamlab", "system", "system_auth", "system_schema"):
        raise ValueError(f"refusing to change the replication of {keyspace!r}: lessons use their own keyspaces")
    cluster, session = schema.connect(cfg or get_config())
    try:
        session.execute(f"ALTER KEYSPACE {keyspace} WITH replication = "
                        f"{{'class': 'SimpleStrategy', 'replication_factor': {int(factor)}}}")
    finally:
        cluster.shutdown()


@contextmanager
def unavailable_writes(keyspace: str, cfg: LabConfig | None = None) -> Iterator[None]:
    """Inside the block, ``LOCAL_QUORUM`` writes to ``keyspace`` fail with Unavailable."""
    set_replication(keyspace, 3, cfg)
    try:
        yield
    finally:
        set_replication(keyspace, 1, cfg)


@dataclass
class Sample:
    t: float                 # seconds since the experiment started
    claimed: float | None    # the stream's rows_written_total (None: endpoint down)
    stored: int              # rows Cassandra holds for this run
    failures: float | None   # write_failures_total
    outage: bool


@dataclass
class CounterExperiment:
    """The stream through an outage of its writes.

        run = CounterExperiment.start("lesson05_broken", count_before_write=True)
        run.outage(20)          # samples claimed vs stored every second meanwhile
        report = run.finish()   # feed stopped, caught up, audited
    """

    name: str
    count_before_write: bool
    rate: int
    svc: object
    feeder: Feeder
    profile: Profile
    baseline: int
    cfg: LabConfig
    started: float = field(default_factory=time.monotonic)
    swallow_write_errors: bool = False
    samples: list[Sample] = field(default_factory=list)
    report: AuditReport | None = None

    @classmethod
    def start(cls, name: str, count_before_write: bool, rate: int = 100, write_retry_seconds: float = 2.0,
              cfg: LabConfig | None = None, progress=print,
              swallow_write_errors: bool = False) -> "CounterExperiment":
        cfg = cfg or get_config()
        svc = stream_sandbox(name, cfg=cfg, progress=progress, count_before_write=count_before_write,
                             write_retry_seconds=write_retry_seconds, swallow_write_errors=swallow_write_errors)
        s = svc.settings
        profile = Profile(rate=rate, burst_every=0, seed=f"{name}-{s.topic}")
        run = cls(name, count_before_write, rate, svc, Feeder(s.topic, profile, cfg).start(), profile,
                  count_rows(s.keyspace, cfg=cfg), cfg, swallow_write_errors=swallow_write_errors)
        wait_for(lambda: run.svc.metric("batches_committed_total", down=0) >= 2, 120, "two batches before the outage")
        return run

    @property
    def keyspace(self) -> str:
        return self.svc.settings.keyspace

    def claimed(self) -> float | None:
        """What the stream says it wrote (its own counter)."""
        return self.svc.metric("rows_written_total")

    def stored(self) -> int:
        """What Cassandra holds of this run (rows of the keyspace minus those before it)."""
        return count_rows(self.keyspace, cfg=self.cfg) - self.baseline

    def sample(self, outage: bool = False) -> Sample:
        s = Sample(time.monotonic() - self.started, self.claimed(), self.stored(),
                   self.svc.metric("write_failures_total"), outage)
        self.samples.append(s)
        return s

    def outage(self, seconds: float, every: float = 1.0) -> list[Sample]:
        """Make the stream's writes fail for ``seconds``, sampling claimed vs stored
        every ``every`` seconds (a sampling pace, not a wait for anything)."""
        during = []
        with unavailable_writes(self.keyspace, self.cfg):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                during.append(self.sample(outage=True))
                time.sleep(every)
        return during

    @property
    def during_outage(self) -> list[Sample]:
        return [s for s in self.samples if s.outage]

    def finish(self, timeout: float = 180) -> AuditReport:
        """Stop feeding, wait until the stream consumed (and so stored) everything, audit."""
        self.report = audit_fed_stream(self.feeder, self.svc, self.profile, self.cfg, timeout)
        self.sample()
        return self.report

    def summary(self) -> dict:
        last = self.samples[-1]
        return {"run": self.name, "count_before_write": self.count_before_write,
                "swallow_write_errors": self.swallow_write_errors, "claimed": last.claimed,
                "stored": last.stored, "claimed - stored": (last.claimed or 0) - last.stored,
                "write failures": last.failures, "missing": self.report.missing if self.report else None}
