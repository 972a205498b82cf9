"""Everything one run of the stream job can vary, in one frozen object.

The failure-mode switches are fields here (``checkpoint``, ``starting_offsets``,
``count_before_write``): the broken and the fixed pipeline are the same code with a
different parameter. The managed service reads them from ``LAB_STREAM_*`` variables,
so ``lab up stream`` and a notebook's ``run(StreamSettings(...))`` run the same job.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlparse

from labsupport.config import EnvSettings, LabConfig
from labsupport.errors import LabError
from labsupport.events import MAX_IDENTIFIER_CHARS

BUCKET_FORMATS = {  # width -> (Spark datetime pattern, Python strftime)
    "day": ("yyyy-MM-dd", "%Y-%m-%d"),
    "hour": ("yyyy-MM-dd'T'HH", "%Y-%m-%dT%H"),
    "minute": ("yyyy-MM-dd'T'HH:mm", "%Y-%m-%dT%H:%M"),
}
CONSISTENCY_LEVELS = ("ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL")


class BadStreamSetting(LabError):
    """A LAB_STREAM_* value or a StreamSettings field that cannot work."""


@dataclass(frozen=True)
class StreamSettings(EnvSettings):
    ENV_PREFIX, ENV_ERROR = "LAB_STREAM_", BadStreamSetting

    topic: str = "events"
    keyspace: str = "streamlab"
    query_name: str = "events_to_cassandra"
    #: "persistent" = <lab home>/checkpoints/<query>, "ephemeral" = a folder a simulated
    #: container restart wipes (failure mode 1), or an explicit path
    checkpoint: str = "persistent"
    #: only used when the checkpoint is empty; afterwards the checkpoint decides
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int = 20000
    trigger: str = "2 seconds"
    #: failure mode 2: True increments rows_written_total BEFORE Cassandra confirmed
    count_before_write: bool = False
    #: the seed's "data silently dropping" (lesson 05): True catches a failed write inside
    #: foreachBatch and returns normally, so Spark commits the batch and its rows are lost
    swallow_write_errors: bool = False
    consistency: str = "LOCAL_QUORUM"
    bucket_width: str = "hour"
    shards: int = 4
    write_by_source: bool = True
    max_payload_bytes: int = 4096
    #: objects/arrays nested deeper than this are quarantined unparsed (an event nests 2)
    max_json_depth: int = 8
    #: event_id, source_id, event_type longer than this are quarantined (they are Cassandra keys)
    max_identifier_chars: int = MAX_IDENTIFIER_CHARS
    max_future_seconds: int = 300
    max_past_seconds: int = 7 * 24 * 3600
    #: rows per UNLOGGED batch (one partition each). Measured on the lab machine: 100 rows
    #: instead of 20 cut Cassandra's CPU per row 3-4x (one mutation, one request, per 100)
    batch_rows: int = 100
    #: ...and at most this many bytes, under the node's batch_size_warn_threshold (64 KiB)
    batch_bytes: int = 48 * 1024
    concurrency: int = 32
    #: how long one micro-batch keeps retrying a failing Cassandra before the query fails
    write_retry_seconds: float = 20.0
    #: a batch that fails as a whole this many times (each a query restart) has its records
    #: quarantined as poison_record: no record can restart the query forever
    poison_after_failures: int = 3
    group_id: str = "streamlab-stream"

    def __post_init__(self):
        if self.bucket_width not in BUCKET_FORMATS:
            raise BadStreamSetting(f"bucket width {self.bucket_width!r} is unknown",
                                   f"choose one of {', '.join(BUCKET_FORMATS)}")
        if self.consistency.upper() not in CONSISTENCY_LEVELS:
            raise BadStreamSetting(f"consistency {self.consistency!r} is unknown",
                                   f"choose one of {', '.join(CONSISTENCY_LEVELS)}")
        if self.starting_offsets not in ("earliest", "latest") and not self.starting_offsets.startswith("{"):
            raise BadStreamSetting(f"startingOffsets {self.starting_offsets!r} is not earliest, latest or JSON",
                                   "use earliest or latest")
        if self.shards < 1:
            raise BadStreamSetting(f"shards={self.shards} must be at least 1", "use 1 (no sharding) or more")

    # ---- where the checkpoint lives ----------------------------------------------------
    def checkpoint_location(self, cfg: LabConfig) -> str:
        """Where Spark keeps the checkpoint, as Spark takes it: a local path, or — with
        ``LAB_SPARK_CHECKPOINT_ROOT`` set to a filesystem every executor and a restarted
        driver share (``hdfs://…``, ``s3a://…``, ``file:///shared/…``) — a URI under it."""
        root = cfg.spark_checkpoint_root.rstrip("/")
        if self.checkpoint == "persistent" and root and urlparse(root).scheme not in ("", "file"):
            return f"{root}/{self.query_name}"
        return str(self.checkpoint_dir(cfg))

    def checkpoint_dir(self, cfg: LabConfig) -> Path:
        """The checkpoint as a folder on this machine (to read it, wipe it, show it)."""
        if self.checkpoint == "persistent":
            root = cfg.spark_checkpoint_root
            if not root:
                return cfg.paths.checkpoints / self.query_name
            parsed = urlparse(root)
            if parsed.scheme not in ("", "file"):
                raise BadStreamSetting(f"the checkpoint is at {root.rstrip('/')}/{self.query_name}, not on this machine",
                                       "read it with your cluster's filesystem tools (e.g. `hdfs dfs -ls`)")
            return Path(parsed.path if parsed.scheme else root) / self.query_name
        if self.checkpoint == "ephemeral":
            return ephemeral_root(cfg) / self.query_name
        return Path(self.checkpoint)


def ephemeral_root(cfg: LabConfig) -> Path:
    """The container's /tmp of failure mode 1: under the system temp dir, one per lab home
    (so two labs on one machine never share it). A simulated restart deletes it."""
    tag = hashlib.blake2b(str(cfg.paths.home).encode(), digest_size=4).hexdigest()
    return Path(tempfile.gettempdir()) / f"streamlab-ephemeral-{tag}"
