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
    from labsupport.stack import services
    from labsupport import stack

    before = services.running()
    stack.up(["kafka", "cassandra", "prometheus"])
    yield stack
    # leave the machine as found: a learner's running lab stays up after `lab test`
    started = [n for n in services.running() if n not in before]
    if started:  # (an empty list would mean every service)
        stack.down(started)


@pytest.fixture(scope="session")
def ingest_stack(lab_stack):
    """events-api and Airflow on top of ``lab_stack``, arranged for the ingestion tests.

    Airflow is (re)started with test settings the DAG reads from its environment: a
    start_date ten minutes back (catchup runs those windows at once instead of after
    minutes of wall-clock), 1 s retry delays, 1,000-event pages and a topic of its own.
    The DAG's history is deleted first (the DAG is re-parsed paused), so runs of an
    earlier session can't shadow this one's windows. Bursts are switched off in the
    API for the session (restored after) so every window has the same small size."""
    import httpx

    from labsupport import lessons
    from labsupport.stack import services
    from labsupport.config import get_config

    cfg = get_config()
    lab_stack.up(["events-api"])
    api = httpx.Client(base_url=cfg.events_api, timeout=10)
    old_profile = api.get("/profile").json()
    profile = api.put("/profile", json={**old_profile, "burst_every": 0}).json()
    api.delete("/faults")

    sandbox = lessons.ingest_sandbox(minutes_back=10, topic_prefix="events-test", retries=3, retry_delay_s=1,
                                     max_retry_delay_s=8, http_attempts=4, page_size=1000, cfg=cfg)
    client, start, topic = sandbox["client"], sandbox["start"], sandbox["topic"]
    yield {"client": client, "api": api, "start": start, "topic": topic, "profile": profile, "cfg": cfg}
    # faults and profile live in the API process: once the stack has been stopped (the
    # last test does that) there is nothing left to restore
    if services.service("events-api", cfg).running():
        api.delete("/faults")
        api.put("/profile", json=old_profile)


@pytest.fixture
def pipeline_flowing(lab_stack):
    """The whole pipeline with data in every layer, as lesson 07 starts from
    (`labsupport.lessons.reset.pipeline_flowing`: the stream service writing the
    `events` topic into Cassandra, one malformed record quarantined, the events API
    having served events, the pipeline view up). Cheap when already flowing; yields the
    number of events this call published."""
    from labsupport.config import get_config
    from labsupport.lessons.reset import pipeline_flowing as flowing

    yield flowing(get_config())
