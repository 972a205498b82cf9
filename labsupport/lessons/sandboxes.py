"""A lesson's (or a test's) own corner of the running lab, and the way back.

* `stream_sandbox` — the `stream` service restarted with lesson settings on a lesson
  topic and keyspace; `restore_stream` puts the default stream back.
* `ingest_sandbox` — Airflow restarted with short retries and a topic of its own, the
  DAG's earlier history forgotten; `restart_airflow()` with no settings restores it.

Everything a sandbox writes has its own names (topic, keyspace, checkpoint, query), so a
lesson never mistakes the learner's data — or its own earlier run's — for its own.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable

from labsupport import schema
from labsupport.config import LabConfig, get_config
from labsupport.ingest import topics
from labsupport.ingest.airflow_client import AirflowApiError, AirflowClient
from labsupport.ingest.settings import IngestSettings
from labsupport.stack.services.airflow import AirflowService
from labsupport.stack.services.stream import StreamService
from labsupport.stream.settings import StreamSettings
from labsupport.waits import wait_for

#: what a sandboxed stream runs with unless the lesson says otherwise: short triggers so
#: a lesson sees batches within seconds, small batches for a 2-core machine
LESSON_STREAM = dict(trigger="1 second", max_offsets_per_trigger=5000)


# ---- the stream -----------------------------------------------------------------------------
def sandbox_names(name: str) -> dict[str, str]:
    """Topic, keyspace and query name of a sandbox called ``name`` (e.g. ``lesson04``,
    or a test's random tag). Topic and query (hence checkpoint) carry the start time, so
    a second run of the same lesson reads a topic of its own, never resumes the earlier
    run's checkpoint, and never sees its earlier events; the keyspace is kept."""
    ident = "".join(c if c.isalnum() else "_" for c in name.lower())
    stamp = time.time_ns() // 1_000_000
    return {"topic": f"{name}-{stamp}", "keyspace": ident if ident[0].isalpha() else f"t_{ident}",
            "query_name": f"q_{ident}_{stamp}"}


def stream_sandbox(name: str, cfg: LabConfig | None = None, start: bool = True, progress=print,
                   service: Callable[[LabConfig, StreamSettings], StreamService] = StreamService,
                   **overrides) -> StreamService:
    """Stop whatever `stream` runs now and start it with lesson settings: a fresh topic
    (``<name>-<epoch ms>``, replay retention), keyspace ``<name>``, query ``q_<name>_<epoch ms>`` and
    any ``StreamSettings`` field in ``overrides`` (``checkpoint="ephemeral"``,
    ``count_before_write=True`` …). ``service`` makes the process that runs in the stream's
    slot (the lab's job by default; lesson 11's is the learner's own script). Returns the
    service (``start=False``: not started)."""
    cfg = cfg or get_config()
    names = sandbox_names(name)
    settings = StreamSettings(**{**names, **LESSON_STREAM, **overrides})
    topics.ensure_topic(settings.topic, cfg=cfg)
    schema.ensure(cfg, settings.keyspace)
    StreamService(cfg).stop()  # one stream service at a time: its ports and pid file are shared
    svc = service(cfg, settings)
    if start:
        svc.start(progress)
    return svc


def restore_stream(cfg: LabConfig | None = None, progress=print, start: bool = True) -> StreamService:
    """Stop a sandboxed stream and, with ``start``, run the default one again (the
    learner's `events` topic into `streamlab`, its own persistent checkpoint)."""
    cfg = cfg or get_config()
    StreamService(cfg).stop()
    svc = StreamService(cfg, StreamSettings.from_env())
    if start:
        svc.start(progress)
    return svc


def unique_tag() -> str:
    return uuid.uuid4().hex[:8]


# ---- the ingestion DAG ----------------------------------------------------------------------
def restart_airflow(settings: IngestSettings | None = None, cfg: LabConfig | None = None) -> AirflowService:
    """Stop and start the airflow service so the DAG runs with ``settings`` (None: the
    lab's defaults, from ``LAB_INGEST_*`` if set). Airflow keeps them until its next
    restart; nothing in this process's environment changes."""
    airflow = AirflowService(cfg or get_config(), settings)
    airflow.stop()
    airflow.start()
    return airflow


def forget_ingest_runs(client: AirflowClient | None = None, timeout: float = 120) -> AirflowClient:
    """Pause the ingestion DAG, fail its unfinished runs, delete its history and wait
    until the dag-processor has parsed it again (paused, with its current settings), so
    earlier runs can't shadow the windows that come next. Topic data is untouched."""
    client = client or AirflowClient()
    client.pause()
    for run in client.runs(limit=1000):
        if run["state"] in ("queued", "running"):
            client.request("PATCH", f"/dags/{client.dag_id}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})

    def deleted() -> bool:
        try:
            client.request("DELETE", f"/dags/{client.dag_id}")
            return True
        except AirflowApiError as exc:
            if "HTTP 409" not in exc.cause:  # 409: a run is still finishing
                raise
            return False

    wait_for(deleted, 60, "Airflow to accept the DAG's deletion", interval=1)
    wait_for(client.dag_parsed, timeout, "the dag-processor to parse the DAG again (read `lab logs airflow`)",
             interval=1)
    return client


def ingest_sandbox(minutes_back: int = 10, topic_prefix: str = "events-test", retries: int = 3,
                   retry_delay_s: float = 1, max_retry_delay_s: float = 8, http_attempts: int = 4,
                   page_size: int = 1000, cfg: LabConfig | None = None) -> dict:
    """Airflow restarted for a lesson or a test: the DAG's ``start_date`` ``minutes_back``
    whole minutes ago (catchup runs those windows at once instead of one per minute of
    wall-clock; the lab's default has catchup off), short retry delays, small pages, a topic of its own
    (``{topic_prefix}-{start}``, created with replay retention) and no earlier history.
    The DAG is left paused. Returns {"client", "start", "topic", "settings"}."""
    cfg = cfg or get_config()
    start = (int(time.time()) // 60 - minutes_back) * 60
    topic = f"{topic_prefix}-{start}"
    topics.ensure_topic(topic, cfg=cfg)
    settings = IngestSettings(start_date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)), catchup=True,
                              topic=topic,
                              retries=retries, retry_delay_s=retry_delay_s, max_retry_delay_s=max_retry_delay_s,
                              http_attempts=http_attempts, page_size=page_size)
    restart_airflow(settings, cfg)
    client = forget_ingest_runs(AirflowClient(cfg))
    return {"client": client, "start": start, "topic": topic, "settings": settings}
