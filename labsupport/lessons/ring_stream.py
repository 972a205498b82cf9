"""The lab's stream while lesson 10 takes Cassandra nodes down: what it does, read from
its own counters, and the audit once the ring is whole again.

`StreamOnRing.start` runs a sandboxed stream on the ring (`stream_sandbox`: its own
topic, keyspace and checkpoint; the keyspace at the ring's replication factor 3, written
at ``LOCAL_QUORUM`` as the production sink does). Spark starts in a background thread, so
its half-minute start overlaps the waits the lesson makes anyway (a killed node's
conviction) instead of adding to them; `feed` publishes known events at a low rate
(`Feeder`) from then on. `read`
records the stream's counters at a step of the outage, waiting (with a deadline) until
they show what that step is about; `finish` stops the feed, waits until the stream has
consumed everything and audits it; `stop` ends the sandbox. The kills and the lesson's
own writes stay the lesson's (`ring_outages`).

The audit reads at ``ALL`` (`labsupport.lessons.audit.every_replica_session` says why: on a
ring that just lost a node to ``kill -9``, a row acknowledged at ``LOCAL_QUORUM`` may be on
one replica only).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import httpx

from labsupport.config import LabConfig, get_config
from labsupport.events import Profile
from labsupport.lessons.audit import AuditReport, audit_fed_stream
from labsupport.lessons.feed import Feeder
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.stack.services.stream import StreamService
from labsupport.waits import wait_for

#: the counters the lesson shows (column title -> the stream's own metric, summed over labels)
COUNTERS = {"batches committed": "batches_committed_total", "rows written": "rows_written_total",
            "write failures": "write_failures_total", "query restarts": "query_restarts_total",
            "quarantined": "quarantined_total"}
#: what a write failure looks like in the stream's log (labsupport.stream.sink)
FAILURE_LINE = "Cassandra write failed"


@dataclass(frozen=True)
class Reading:
    """The stream's counters (``COUNTERS``' titles) at one step of the outage."""
    step: str
    counters: Mapping[str, float]


def counters_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """The lesson's counters out of the stream's metrics (a series not exported yet: 0)."""
    return {title: metrics.get(name, 0.0) for title, name in COUNTERS.items()}


def changes(readings: Sequence[Reading]) -> dict[str, dict[str, float]]:
    """{step: {counter: its increase since the reading before}}; the first reading's
    increase is its value (the sandboxed stream's counters start at 0 with its process)."""
    out, before = {}, {title: 0.0 for title in COUNTERS}
    for r in readings:
        out[r.step] = {title: r.counters[title] - before[title] for title in COUNTERS}
        before = r.counters
    return out


@dataclass
class StreamOnRing:
    svc: StreamService
    feeder: Feeder | None
    profile: Profile
    cfg: LabConfig
    #: the learner's default stream ran before the sandbox took its place (the put-back restarts it)
    default_was_running: bool
    log_from: int = 0
    readings: list[Reading] = field(default_factory=list)
    started_log: list[str] = field(default_factory=list)
    report: AuditReport | None = None
    _starting: threading.Thread | None = None
    _start_error: list[BaseException] = field(default_factory=list)

    @classmethod
    def start(cls, name: str = "lesson10_stream", rate: int = 50, cfg: LabConfig | None = None,
              progress: Callable[[str], None] = print, **settings) -> "StreamOnRing":
        """The sandbox created (topic, keyspace) and Spark starting in the background;
        returns at once. Nothing is fed until `feed`. ``settings``: any ``StreamSettings``
        field (a 2-second trigger unless told)."""
        cfg = cfg or get_config()
        was_running = StreamService(cfg).running()
        svc = stream_sandbox(name, cfg=cfg, start=False, progress=progress, **{"trigger": "2 seconds", **settings})
        profile = Profile(rate=rate, burst_every=0, seed=f"{name}-{svc.settings.topic}")
        run = cls(svc, None, profile, cfg, was_running,
                  log_from=svc.log.stat().st_size if svc.log.exists() else 0)
        run._starting = threading.Thread(target=run._start_stream, name=f"start-{svc.settings.query_name}",
                                         daemon=True)
        run._starting.start()
        return run

    def feed(self) -> "StreamOnRing":
        """Publish ``rate`` known events per second to the stream's topic, from now until
        `finish` (a feeder made earlier would publish the seconds since then at once)."""
        self.feeder = Feeder(self.svc.settings.topic, self.profile, self.cfg).start()
        return self

    def _start_stream(self) -> None:
        try:  # its progress is kept, not printed: a thread's prints land in whatever cell runs
            self.svc.start(self.started_log.append)
        except BaseException as exc:  # surfaced by the next read
            self._start_error.append(exc)

    def wait_started(self, timeout: float) -> None:
        """Until the stream is ready (it has committed its first batch); its start's error if it failed."""
        wait_for(lambda: not self._starting.is_alive(), timeout, "the lesson's stream to start (`lab logs stream`)",
                 interval=1)
        if self._start_error:
            raise self._start_error[0]

    def counters(self) -> dict[str, float] | None:
        """Its counters now; None while its metrics endpoint does not answer."""
        try:
            return counters_of(self.svc.metrics())
        except httpx.HTTPError:  # the endpoint is not up (the job is starting, or gone)
            return None

    def read(self, step: str, until: Callable[[Mapping[str, float]], bool] = lambda c: True, what: str = "",
             timeout: float = 120) -> Reading:
        """Record the counters at ``step``, once ``until(counters)`` holds (``what`` names
        that condition should it not hold within ``timeout`` s)."""
        self.wait_started(timeout)
        counters = wait_for(lambda: (c := self.counters()) is not None and until(c) and c, timeout,
                            what or f"the stream's counters at {step!r}", interval=1)
        reading = Reading(step, counters)
        self.readings.append(reading)
        return reading

    def failure_lines(self, n: int = 2) -> list[str]:
        """The last ``n`` write failures the stream logged since this sandbox started."""
        tail = self.svc.log_tail(2000, since=self.log_from).splitlines()
        return [ln.strip() for ln in tail if FAILURE_LINE in ln][-n:]

    def finish(self, step: str, timeout: float = 180) -> AuditReport:
        """Stop the feed, wait until the stream has consumed all of it, record ``step``'s
        counters and audit every event fed (read at ``ALL``: see the module's docstring)."""
        self.report = audit_fed_stream(self.feeder, self.svc, self.profile, self.cfg, timeout)
        self.read(step)
        return self.report

    def table(self):
        """What each step added to each counter (the steps as read), and the totals."""
        import pandas as pd

        grown = changes(self.readings)
        frame = pd.DataFrame.from_dict(grown, orient="index").astype(int)
        frame.loc["total"] = frame.sum()
        frame.index.name = "while"
        return frame

    def stop(self, progress: Callable[[str], None] = print) -> None:
        """Stop feeding and stop the sandboxed stream (its topic and keyspace are kept)."""
        if self.feeder is not None:  # fed: its thread is joined
            self.feeder.__exit__(None, None, None)
        if self._starting is not None:
            self._starting.join(60)
        self.svc.stop(grace=20, progress=progress)
