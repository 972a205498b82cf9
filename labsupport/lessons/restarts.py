"""Restart experiments for the checkpoint lesson (04): one function for the broken and
the fixed run, so the only thing that differs between them is the setting.

`restart_run` starts a sandboxed `stream`, feeds it known events at a steady rate,
restarts it — each restart ``"container"`` (SIGKILL and an empty /tmp, as a new
container would have) or ``"kill"`` (SIGKILL only) — keeps feeding, waits until the stream has
consumed everything, then audits the window against Cassandra. The record it returns
holds the audit and what the checkpoint looked like around each restart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from labsupport.config import LabConfig, get_config
from labsupport.events import Profile
from labsupport.ingest import topics
from labsupport.lessons.audit import AuditReport, audit
from labsupport.lessons.feed import Feeder
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.stack.services.stream import StreamService
from labsupport.stream.job import read_checkpoint_id
from labsupport.waits import wait_for


def batch_end_offsets(checkpoint: Path, batch_id: int) -> dict[str, int]:
    """The Kafka offsets (partition -> next offset) batch ``batch_id`` read up to: the last
    line of ``<checkpoint>/offsets/<batch id>`` (a version line, the batch's metadata, then
    one JSON line per source: ``{"topic": {"0": 1234, ...}}``)."""
    last = (Path(checkpoint) / "offsets" / str(batch_id)).read_text().splitlines()[-1]
    return {part: int(off) for offsets in json.loads(last).values() for part, off in offsets.items()}


def initial_offsets(checkpoint: Path) -> dict[str, int]:
    """Where a fresh query began (partition -> offset): ``<checkpoint>/sources/0/0``, which
    the Kafka source writes once, at the query's first start, with ``startingOffsets``
    (``latest``, ``earliest``) resolved to numbers. The file opens with a NUL byte kept
    for Spark 2.1 compatibility, then a version line, then the JSON."""
    text = (Path(checkpoint) / "sources" / "0" / "0").read_bytes().lstrip(b"\x00").decode()
    return {part: int(off) for offsets in json.loads(text.splitlines()[-1]).values() for part, off in offsets.items()}


def committed_batch_ids(checkpoint: Path) -> list[int]:
    """Batch ids Spark recorded as committed in ``<checkpoint>/commits/`` (one file per
    batch, named by its id; Spark's ``.crc`` side files are hidden)."""
    commits = Path(checkpoint) / "commits"
    return sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.is_dir() else []


@dataclass
class Restart:
    checkpoint_id_before: str
    checkpoint_id_after: str
    last_batch_before: int           # the highest committed batch id when it was killed
    first_batch_after: int           # the first batch id the new run committed
    rows_claimed_before: float       # rows_written_total of the run that was killed
    down_s: float                    # from the kill until the new query committed a batch
    #: partition -> offset the last committed batch read up to, before the kill
    read_up_to_before: dict[str, int] = field(default_factory=dict)
    #: partition -> offset in ``sources/0/0`` after the restart: where the query began
    #: (a fresh checkpoint: ``startingOffsets`` resolved now; a kept one: its first start)
    began_at_after: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Offsets between where the killed query had read to (its last committed batch)
        and where a fresh query began: events no batch of it will read. 0 for a kept
        checkpoint, which resumes from its own offsets log, not from ``sources/0/0``."""
        if self.checkpoint_id_before == self.checkpoint_id_after:
            return 0
        return sum(max(0, self.began_at_after.get(p, 0) - off) for p, off in self.read_up_to_before.items())


@dataclass
class RestartRun:
    name: str
    rate: int
    checkpoint: Path
    topic: str
    keyspace: str
    restarts: list[Restart] = field(default_factory=list)
    report: AuditReport | None = None

    @property
    def down_s(self) -> float:
        return sum(r.down_s for r in self.restarts)

    def summary(self) -> dict:
        r = self.report
        return {"run": self.name, "restarts": len(self.restarts), "down s": round(self.down_s, 1),
                "produced": r.produced, "landed": r.landed, "missing": r.missing, "duplicated": r.duplicated,
                "same checkpoint": all(x.checkpoint_id_before == x.checkpoint_id_after for x in self.restarts)}


def _batches(svc: StreamService) -> float:
    return svc.metric("batches_committed_total", down=-1.0)


def restart_run(name: str, restarts: Sequence[str] = ("container",), rate: int = 100,
                batches_between: int = 2, cfg: LabConfig | None = None, progress=print,
                **stream_settings) -> RestartRun:
    """Run the sandboxed stream ``name`` with ``stream_settings`` (e.g.
    ``checkpoint="ephemeral", starting_offsets="latest"``), restart it once per entry of
    ``restarts`` (``"container"`` or ``"kill"``), and audit everything fed meanwhile.
    Each restart waits for ``batches_between`` committed batches first, so it lands
    mid-stream."""
    unknown = [h for h in restarts if h not in ("container", "kill")]
    if unknown:
        raise ValueError(f"restarts {unknown}: use 'container' (kill -9 and an empty /tmp) or 'kill' (kill -9)")
    cfg = cfg or get_config()
    svc = stream_sandbox(name, cfg=cfg, progress=progress, **stream_settings)
    s = svc.settings
    run = RestartRun(name, rate, svc.checkpoint, s.topic, s.keyspace)
    profile = Profile(rate=rate, burst_every=0, seed=f"{name}-{s.topic}")
    with Feeder(s.topic, profile, cfg) as feed:  # fed only now: `latest` was resolved by the start
        for i, how in enumerate(restarts):
            target = max(_batches(svc), 0) + batches_between
            wait_for(lambda: _batches(svc) >= target, 120, f"{batches_between} batches before restart {i + 1}")
            claimed = svc.metric("rows_written_total", down=0.0)
            t0 = time.monotonic()
            svc.kill()  # read the checkpoint only once nothing can commit to it any more
            before = read_checkpoint_id(svc.checkpoint)
            last_before = max(committed_batch_ids(svc.checkpoint), default=-1)
            read_up_to = batch_end_offsets(svc.checkpoint, last_before) if last_before >= 0 else {}
            progress(f"restart {i + 1}/{len(restarts)} ({how}) after batch {last_before}")
            if how == "container":
                svc.simulate_container_restart(progress)  # the kill is done; wipes /tmp, starts
            else:
                svc.start(progress)
            down = time.monotonic() - t0
            after_id = read_checkpoint_id(svc.checkpoint)
            # a fresh checkpoint numbers its batches from 0 again; a kept one goes on
            new_ids = (lambda: committed_batch_ids(svc.checkpoint)) if after_id != before else \
                (lambda: [b for b in committed_batch_ids(svc.checkpoint) if b > last_before])
            first_after = min(wait_for(new_ids, 120, f"a committed batch after restart {i + 1}"))
            run.restarts.append(Restart(before, after_id, last_before, first_after, claimed, down, read_up_to,
                                        initial_offsets(svc.checkpoint)))
        wait_for(lambda: _batches(svc) >= 1, 60, "a batch after the last restart")
        since, until = feed.stop()
    topics.wait_caught_up(s.topic, s.group_id, timeout=180, cfg=cfg)
    run.report = audit(since, until, profile, keyspace=s.keyspace, settings=s, topic=s.topic, cfg=cfg)
    r = run.report
    progress(f"{name}: {len(run.restarts)} restart(s), down {run.down_s:.0f} s; produced {r.produced:,}, "
             f"landed {r.landed:,}, missing {r.missing:,}, duplicated {r.duplicated:,}")
    return run
