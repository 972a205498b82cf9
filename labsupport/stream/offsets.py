"""Commit the stream's progress to a Kafka consumer group, so lag tooling can see it.

Spark keeps its Kafka offsets in the checkpoint and never commits them to Kafka; a
consumer-lag panel would show nothing. After each micro-batch this listener writes the
batch's end offsets to the group ``streamlab-stream`` with ``alter_group_offsets``. The
group has no members (Spark's consumers use their own group ids), which is what the
admin call requires. This is for observation only: on restart Spark reads its
checkpoint, never this group.
"""

from __future__ import annotations

import json
import logging

from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger("labsupport.stream")


def _offsets(raw: str | None) -> dict[tuple[str, int], int]:
    """{(topic, partition): offset} of one Kafka offset JSON (``{"t": {"0": 12}}``)."""
    if not raw or not raw.startswith("{"):
        return {}
    return {(topic, int(part)): int(off) for topic, parts in json.loads(raw).items()
            for part, off in parts.items() if int(off) >= 0}


def end_offsets(progress_sources) -> dict[tuple[str, int], int]:
    """{(topic, partition): next offset} from a progress event's sources."""
    out = {}
    for src in progress_sources:
        out.update(_offsets(src.endOffset))
    return out


def offset_lag(progress_sources) -> dict[str, int]:
    """{topic: records not read yet} from a progress event's sources: per partition, the
    latest offset Kafka had when the batch was planned minus the batch's end offset.

    Free to compute (Spark fetched the latest offsets to plan the batch), and exactly
    what ``maxOffsetsPerTrigger`` leaves behind: 0 for an uncapped batch, the rest of the
    backlog for a capped one. It is as of the batch's planning, and only known once the
    batch is done: a long batch holds the previous value until it commits."""
    out: dict[str, int] = {}
    for src in progress_sources:
        latest, end = _offsets(getattr(src, "latestOffset", None)), _offsets(src.endOffset)
        for (topic, part), off in latest.items():
            out[topic] = out.get(topic, 0) + max(off - end.get((topic, part), off), 0)
    return out


class OffsetCommitter(StreamingQueryListener):
    def __init__(self, bootstrap_servers: str, group_id: str, query_name: str | None = None):
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.query_name = query_name
        self._admin = None
        self.last_committed: dict[tuple[str, int], int] = {}
        self.on_idle = None  # optional callback(event) when the query caught up
        self.on_lag = None  # optional callback({topic: offsets not read yet}) after each batch

    def _client(self):
        if self._admin is None:
            from kafka.admin import KafkaAdminClient

            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                           client_id=f"{self.group_id}-committer", request_timeout_ms=10000)
        return self._admin

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        if self.query_name and progress.name != self.query_name:
            return
        if self.on_lag is not None:
            self.on_lag(offset_lag(progress.sources))
        offsets = end_offsets(progress.sources)
        if not offsets or offsets == self.last_committed:
            return
        try:
            self.commit(offsets)
        except Exception as exc:  # observation only: never let it disturb the query
            log.warning("could not commit offsets to group %s: %s: %s", self.group_id, type(exc).__name__, exc)
            if self._admin is not None:
                try:
                    self._admin.close()
                finally:
                    self._admin = None

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        result = self._client().alter_group_offsets(
            self.group_id, {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
        failed = {tp: err for tp, err in (result or {}).items() if getattr(err, "errno", 0)}
        if failed:
            raise RuntimeError(f"partitions not committed: {failed}")
        self.last_committed = offsets

    def onQueryIdle(self, event) -> None:
        if self.on_idle is not None:
            self.on_idle(event)

    def onQueryTerminated(self, event) -> None:
        pass

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
