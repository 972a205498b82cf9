"""Shared test plumbing.

The real stack is started once per test session (``lab_stack``) and stopped at the end.
Tests marked ``stack_teardown`` stop it themselves, so they are moved to the very end.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    last = [i for i in items if i.get_closest_marker("stack_teardown")]
    items[:] = [i for i in items if not i.get_closest_marker("stack_teardown")] + last


@pytest.fixture(scope="session")
def lab_stack():
    """Kafka, Cassandra and Prometheus, really running, for the whole session.

    There is no skip: a service that cannot start fails every test that needs it."""
    from labsupport import stack

    stack.up(["kafka", "cassandra", "prometheus"])
    yield stack
    stack.down()


@pytest.fixture(scope="session")
def ingest_stack(lab_stack):
    """events-api and Airflow on top of ``lab_stack``, arranged for the ingestion tests.

    Airflow is (re)started with test settings the DAG reads from its environment: a
    start_date ten minutes back (catchup runs those windows at once instead of after
    minutes of wall-clock), 1 s retry delays, 1,000-event pages and a topic of its own.
    The DAG's history is deleted first (the DAG is re-parsed paused), so runs of an
    earlier session can't shadow this one's windows. Bursts are switched off in the
    API for the session (restored after) so every window has the same small size."""
    import os
    import time

    import httpx

    from labsupport import services, topics
    from labsupport.airflow_client import AirflowClient, AirflowApiError
    from labsupport.config import get_config

    cfg = get_config()
    lab_stack.up(["events-api"])
    api = httpx.Client(base_url=cfg.events_api, timeout=10)
    old_profile = api.get("/profile").json()
    profile = api.put("/profile", json={**old_profile, "burst_every": 0}).json()
    api.delete("/faults")

    start = (int(time.time()) // 60 - 10) * 60
    topic = f"events-test-{start}"
    topics.ensure_topic(topic, cfg=cfg)
    settings = {"LAB_INGEST_START_DATE": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "LAB_INGEST_TOPIC": topic, "LAB_INGEST_RETRIES": "3", "LAB_INGEST_RETRY_DELAY_S": "1",
                "LAB_INGEST_MAX_RETRY_DELAY_S": "8", "LAB_INGEST_HTTP_ATTEMPTS": "4",
                "LAB_INGEST_PAGE_SIZE": "1000"}
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
    client = AirflowClient(cfg)
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
    deadline = time.monotonic() + 120
    while not client.dag_parsed():
        if time.monotonic() > deadline:
            raise AirflowApiError("the DAG was not re-parsed within 120 s after its deletion",
                                  "read `lab logs airflow` (dag-processor)")
        time.sleep(1)
    yield {"client": client, "api": api, "start": start, "topic": topic, "profile": profile, "cfg": cfg}
    # faults and profile live in the API process: once the stack has been stopped (the
    # last test does that) there is nothing left to restore
    if services.service("events-api", cfg).running():
        api.delete("/faults")
        api.put("/profile", json=old_profile)


@pytest.fixture
def pipeline_flowing(lab_stack):
    """The whole pipeline with data in every layer: the stream service (default
    settings) writing the `events` topic into Cassandra, one malformed record
    quarantined, the events API having served events, and the Streamlit pipeline view
    up. Cheap when already flowing; yields the number of events this call published."""
    import time
    from datetime import datetime, timedelta, timezone

    import httpx

    from labsupport import events, prom, producers, schema, topics
    from labsupport.config import get_config

    cfg = get_config()
    lab_stack.up(["events-api"])
    landed_before = prom.scalar('sum(rows_written_total{job="stream"})')
    topics.ensure_topic(cfg=cfg)
    schema.ensure(cfg)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    batch = list(events.events_between(end - timedelta(seconds=60), end))
    producers.publish(batch, topics.EVENTS_TOPIC, cfg=cfg)
    producer = producers.make_producer(cfg)
    producer.send(topics.EVENTS_TOPIC, key=b"sensor-bad", value=b"{not json").get(timeout=30)
    producer.close()
    r = httpx.get(f"{cfg.events_api}/events", params={"since": (end - timedelta(seconds=5)).isoformat(),
                                                      "until": end.isoformat()}, timeout=10)
    assert r.status_code == 200, r.text
    lab_stack.up(["stream", "pipeline-view"])
    deadline = time.monotonic() + 180
    while prom.scalar('sum(rows_written_total{job="stream"})') < landed_before + len(batch) or \
            not prom.query('quarantined_total{job="stream"}'):
        assert time.monotonic() < deadline, "the stream did not land the events within 180 s"
        time.sleep(1)
    yield len(batch)
