"""`lab bench`'s recovery step: seconds from ``kill -9`` of the `stream` service to its
first committed batch after `lab up stream`, and what those seconds are spent on.

The lab's `stream` service is left as found:

* running — it is killed and started again with the settings it ran with (read from its
  process's ``LAB_STREAM_*`` environment), exactly as `lab kill stream; lab up stream`
  would with those settings. Its topic is the learner's: nothing is published to it, so
  when it had no input to replay and none arrives, the step ends at "caught up" instead
  of a committed batch, and says so.
* stopped — a sandboxed stream (topic and keyspace of the benchmark's own, fed by the
  load generator at a low rate) is started for the step, killed, started again, then
  stopped; its topic, keyspace and checkpoint are removed.

"Committed" is Spark's own record: a new file in the checkpoint's ``commits/`` (a batch
that re-ran after the kill counts: the replay is what recovery is). The phases are read
by polling while the restart runs: the process is up, the metrics endpoint answers, the
query is active, the first batch is committed.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from labsupport.bench import scratch_data
from labsupport.config import LabConfig
from labsupport.errors import LabError
from labsupport.lessons.restarts import committed_batch_ids
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.stack.services.stream import StreamService
from labsupport.stream.settings import StreamSettings
from labsupport.waits import wait_for

SANDBOX = "bench_recovery"
PHASES = ("process_up", "metrics_up", "query_active", "first_batch")
POLL_S = 0.1


class RecoveryFailed(LabError):
    """The stream did not come back within the step's bound."""


def running_settings(svc: StreamService) -> StreamSettings | None:
    """The settings the running `stream` process was started with, None when it is not running."""
    rec = svc.record()
    leader = rec.leader() if rec else None
    if leader is None:
        return None
    return StreamSettings.from_env(leader.environ())


def phases_from_marks(marks: dict[str, float], t0: float) -> dict[str, float]:
    """Seconds spent in each phase (from the previous mark) given the moment each was first seen."""
    out, prev = {}, t0
    for name in PHASES:
        if name in marks:
            out[name] = round(marks[name] - prev, 2)
            prev = marks[name]
    return out


def measure(cfg: LabConfig, bound_s: float, feed_rate: float = 100.0,
            progress: Callable[[str], None] = print, group_id: str = "streamlab-bench") -> dict:
    """The step; ``group_id``: the consumer group of a sandboxed stream (a running one keeps its own)."""
    quiet = lambda _msg: None  # noqa: E731
    found = StreamService(cfg)
    settings = running_settings(found)
    sandboxed = settings is None
    feeder = None
    if sandboxed:
        progress(f"  the stream service is stopped: starting a sandboxed one ({SANDBOX}) for the step")
        svc = stream_sandbox(SANDBOX, cfg=cfg, start=False, group_id=group_id)
        feeder = _feed(cfg, svc.settings.topic, feed_rate, 3 * bound_s)  # killed once done
    else:
        progress(f"  the stream service is running (topic {settings.topic}): it is restarted with its settings")
        svc = StreamService(cfg, settings)
    try:
        if sandboxed:  # killed mid-stream, as a crash would find it: after its first batch
            svc.start(quiet)
            wait_for(lambda: committed_batch_ids(svc.checkpoint), bound_s, "the sandboxed stream's first batch")
        t0 = time.monotonic()
        svc.kill(quiet)
        last_before = max(committed_batch_ids(svc.checkpoint), default=-1)  # nothing can commit any more
        progress(f"  kill -9 after batch {last_before}; `lab up stream` ...")
        result = _restart_and_watch(svc, last_before, t0, t0 + bound_s)
        progress(f"  {result['until']} {result['seconds']:.1f} s after the kill")
        return {**result, "service_was": "stopped" if sandboxed else "running",
                "topic": svc.settings.topic, "trigger": svc.settings.trigger}
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()
        if sandboxed:
            svc.stop(progress=quiet)
            _remove_sandbox(cfg, svc, progress)
        elif not svc.running():  # the restart failed: one more try to leave it as found
            svc.start(progress)


def _restart_and_watch(svc: StreamService, last_before: int, t0: float, deadline: float) -> dict:
    marks: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(svc.start, lambda _msg: None)
        while "first_batch" not in marks:
            now = time.monotonic()
            if now > deadline:
                raise RecoveryFailed(f"the stream had not committed a batch {now - t0:.0f}s after kill -9",
                                     "read `lab logs stream`; the machine may be overloaded")
            if started.done() and started.exception() is not None:
                raise started.exception()
            if "process_up" not in marks and svc.running():
                marks["process_up"] = now
            active = svc.metric("query_active") if "process_up" in marks else None
            if active is not None:
                marks.setdefault("metrics_up", now)
                if active >= 1:
                    marks.setdefault("query_active", now)
            if after := [b for b in committed_batch_ids(svc.checkpoint) if b > last_before]:
                marks["first_batch"], batch_after = now, min(after)
                until = "first committed batch"
            elif started.done() and svc.metric("query_idle") == 1:
                marks["first_batch"], batch_after = now, None  # caught up, nothing to commit: ready
                until = "caught up (no input to commit)"
            time.sleep(POLL_S)
        started.result()
    for name in PHASES:  # a phase passed between two polls is dated with the next one
        marks.setdefault(name, marks["first_batch"])
    return {"seconds": round(marks["first_batch"] - t0, 2), "until": until, "batch_before": last_before,
            "batch_after": batch_after, "phases_s": phases_from_marks(marks, t0)}


def _feed(cfg: LabConfig, topic: str, rate: float, seconds: float):
    from labsupport.bench.stream import generate

    return generate(cfg, topic, rate, seconds, f"recovery{int(time.time())}")


def _remove_sandbox(cfg: LabConfig, svc: StreamService, progress) -> None:
    scratch_data.delete_topic(cfg, svc.settings.topic, progress)
    shutil.rmtree(svc.checkpoint, ignore_errors=True)
    scratch_data.drop_keyspace(cfg, svc.settings.keyspace, progress)
