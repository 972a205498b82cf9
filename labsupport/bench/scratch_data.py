"""Removing what a benchmark step made for itself (topics, keyspaces): a leftover is
harmless, so a failure to remove one is said in one line and the run goes on."""

from __future__ import annotations

from typing import Callable

from labsupport.config import LabConfig


def delete_topic(cfg: LabConfig, topic: str, progress: Callable[[str], None]) -> None:
    from labsupport.ingest import topics

    try:
        topics.delete_topic(topic, cfg=cfg)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        progress(f"  could not delete scratch topic {topic}: {exc}")


def drop_keyspace(cfg: LabConfig, keyspace: str, progress: Callable[[str], None]) -> None:
    from labsupport import schema

    if keyspace == "streamlab":  # the learner's: never, whatever a caller passes
        raise ValueError("refusing to drop the learner's keyspace")
    try:
        cluster, session = schema.connect(cfg)
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        finally:
            cluster.shutdown()
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        progress(f"  could not drop the scratch keyspace {keyspace}: {exc}")
