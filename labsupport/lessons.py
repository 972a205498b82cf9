"""`reset_to(n)`: the state lesson ``n`` expects, built from scratch or topped up, so a
learner can open any notebook without running the earlier ones (and CI can run each
notebook alone).

It only ever *adds* state (starts services, creates topics and tables, publishes the
deterministic events of a recent window); it never deletes data.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from labsupport import stack
from labsupport.config import LabConfig, get_config

CORE = ["kafka", "cassandra", "prometheus"]


def _core(cfg: LabConfig) -> None:
    stack.up(CORE, cfg=cfg)


def _ingestion(cfg: LabConfig) -> None:
    """Airflow is not started here: lesson 2 (re)starts it with its own settings
    (`ingest_sandbox`), and starting it twice costs a minute."""
    from labsupport import topics

    stack.up(["events-api"], cfg=cfg)
    topics.ensure_topic(cfg=cfg)


def _stream_inputs(cfg: LabConfig, minutes: int = 5) -> None:
    """Keyspace and tables, and recent events in the topic.

    Idempotent: when the topic already received records in the last ``minutes`` (by
    broker time), nothing is published. Otherwise the events of
    ``[now - 2*minutes, now - minutes)`` (whole minutes) are: older than any window a
    lesson publishes itself (lesson 3 audits the last minutes it published, and a
    second copy of those events would count as duplicates), and never the window an
    earlier call published, which is at least ``minutes`` older."""
    from labsupport import events, producers, schema, topics

    schema.ensure(cfg)
    topics.ensure_topic(cfg=cfg)
    if topics.received_since(topics.EVENTS_TOPIC, time.time() - minutes * 60, cfg=cfg):
        return
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    producers.publish(events.events_between(end - timedelta(minutes=minutes), end), topics.EVENTS_TOPIC, cfg=cfg)


#: which lessons need each step. Lesson 3 on consume the topic, not the DAG: they get the
#: events published directly and no Airflow (two minutes of start-up and a core's worth of
#: CPU on a small machine). A later lesson that needs the DAG again widens its range.
STEPS: list[tuple[range, str, Callable[[LabConfig], None]]] = [
    (range(1, 100), "core services up (Kafka, Cassandra, Prometheus)", _core),
    (range(2, 3), "events API up, `events` topic created (Airflow starts with the lesson's settings)", _ingestion),
    (range(3, 100), "Cassandra schema applied, recent events in the topic", _stream_inputs),
]


def reset_to(lesson: int, cfg: LabConfig | None = None, progress=print) -> list[str]:
    """Prepare the state lesson ``lesson`` starts from; returns the steps taken."""
    cfg = cfg or get_config()
    done = []
    for lessons, what, step in STEPS:
        if lesson in lessons:
            progress(f"reset_to({lesson}): {what}")
            step(cfg)
            done.append(what)
    return done


# ---- the ingestion DAG under lesson / test settings -------------------------------------------

#: what the DAG reads from the airflow service's environment (see dags/ingest_events.py)
INGEST_KNOBS = ("START_DATE", "TOPIC", "RETRIES", "RETRY_DELAY_S", "MAX_RETRY_DELAY_S", "HTTP_ATTEMPTS",
                "PAGE_SIZE", "SCHEDULE", "HTTP_TIMEOUT_S")


def restart_airflow(settings: dict[str, str] | None = None, cfg: LabConfig | None = None):
    """Stop and start the airflow service with ``LAB_INGEST_*`` ``settings`` in its
    environment (the DAG reads them at parse time). The caller's environment is left
    as it was; Airflow keeps the settings until its next restart. Returns the service."""
    import os

    from labsupport import services

    cfg = cfg or get_config()
    settings = {k: str(v) for k, v in (settings or {}).items()}
    unknown = [k for k in settings if k.removeprefix("LAB_INGEST_") not in INGEST_KNOBS]
    if unknown:
        raise ValueError(f"not an ingestion setting: {unknown}; known: LAB_INGEST_{{{','.join(INGEST_KNOBS)}}}")
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        airflow = services.service("airflow", cfg)
        airflow.stop()
        airflow.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return airflow


def forget_ingest_runs(client=None, timeout: float = 120):
    """Pause the ingestion DAG, fail its unfinished runs, delete its history and wait
    until the dag-processor has parsed it again (paused, with its current settings), so
    earlier runs can't shadow the windows that come next. Topic data is untouched."""
    import time

    from labsupport.airflow_client import AirflowApiError, AirflowClient

    client = client or AirflowClient()
    client.pause()
    for run in client.runs(limit=1000):
        if run["state"] in ("queued", "running"):
            client.request("PATCH", f"/dags/{client.dag_id}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
    deadline = time.monotonic() + 60
    while True:
        try:
            client.request("DELETE", f"/dags/{client.dag_id}")
            break
        except AirflowApiError as exc:
            if "HTTP 409" not in exc.cause or time.monotonic() > deadline:
                raise
            time.sleep(1)
    deadline = time.monotonic() + timeout
    while not client.dag_parsed():
        if time.monotonic() > deadline:
            raise AirflowApiError(f"the DAG was not re-parsed within {timeout:.0f} s after its deletion",
                                  "read `lab logs airflow` (dag-processor)")
        time.sleep(1)
    return client


def ingest_sandbox(minutes_back: int = 10, topic_prefix: str = "events-test", retries: int = 3,
                   retry_delay_s: float = 1, max_retry_delay_s: float = 8, http_attempts: int = 4,
                   page_size: int = 1000, cfg: LabConfig | None = None) -> dict:
    """Airflow restarted for a lesson or a test: the DAG's ``start_date`` ``minutes_back``
    whole minutes ago (catchup runs those windows at once instead of one per minute of
    wall-clock), short retry delays, small pages, a topic of its own
    (``{topic_prefix}-{start}``, created with replay retention) and no earlier history.
    The DAG is left paused. Returns {"client", "start", "topic", "settings"}."""
    import time

    from labsupport import topics
    from labsupport.airflow_client import AirflowClient

    cfg = cfg or get_config()
    start = (int(time.time()) // 60 - minutes_back) * 60
    topic = f"{topic_prefix}-{start}"
    topics.ensure_topic(topic, cfg=cfg)
    settings = {"LAB_INGEST_START_DATE": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "LAB_INGEST_TOPIC": topic, "LAB_INGEST_RETRIES": str(retries),
                "LAB_INGEST_RETRY_DELAY_S": f"{retry_delay_s:g}", "LAB_INGEST_MAX_RETRY_DELAY_S": f"{max_retry_delay_s:g}",
                "LAB_INGEST_HTTP_ATTEMPTS": str(http_attempts), "LAB_INGEST_PAGE_SIZE": str(page_size)}
    restart_airflow(settings, cfg)
    client = forget_ingest_runs(AirflowClient(cfg))
    return {"client": client, "start": start, "topic": topic, "settings": settings}


def topic_windows(topic: str, since: float, until: float, profile=None, step: int = 60,
                  cfg: LabConfig | None = None) -> list[dict]:
    """Audit a topic per ``step``-second window of ``[since, until)`` against the events
    the API serves (``labsupport.events``): one row per window with the expected count,
    the records found, distinct ids, missing and duplicated ids, and ``exactly_once``
    (every expected id present once, nothing else, every record equal to the API's)."""
    from collections import Counter, defaultdict

    from labsupport import events, topics
    from labsupport.airflow_client import epoch, to_iso

    profile = profile or events.Profile()
    found: dict[float, list[dict]] = defaultdict(list)
    for ev in topics.replay(topic, cfg=cfg):
        t = epoch(ev["event_time"])
        if since <= t < until:
            found[since + (t - since) // step * step].append(ev)
    rows = []
    for start in range(int(since), int(until), step):
        truth = {e["event_id"]: e for e in events.events_between(start, start + step, profile)}
        got = found.get(float(start), [])
        ids = Counter(e["event_id"] for e in got)
        rows.append({"window": f"{to_iso(start)[11:16]}–{to_iso(start + step)[11:16]}", "expected": len(truth),
                     "records": len(got), "distinct": len(ids), "missing": len(set(truth) - set(ids)),
                     "duplicated": sum(n - 1 for n in ids.values() if n > 1),
                     "exactly_once": bool(truth) and len(got) == len(truth) and set(ids) == set(truth)
                     and all(e == truth[e["event_id"]] for e in got)})
    return rows
