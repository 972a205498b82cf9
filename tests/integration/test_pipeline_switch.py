"""The production pipeline's switch on the real Airflow, events API and Kafka.

* Lesson 02's ending state: `pipeline.switch_on()` puts Airflow back on the lab's default
  settings (whatever a lesson or the ingestion tests left it on), unpauses the DAG, and
  the next scheduled run publishes its window into `events`, every id of it.
* `lab pipeline off` stops the flow: no scheduled run is created across two minute
  boundaries. `lab pipeline on` restarts it at the present: the first run is the latest
  complete window, and the minutes missed while paused get no runs (catchup would have
  created one per missed minute).

Every wait polls with a deadline and fails naming what it waited for.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from labsupport import events
from labsupport.config import get_config
from labsupport.ingest import topics
from labsupport.ingest.airflow_client import AirflowClient
from labsupport.lessons import pipeline
from labsupport.times import epoch
from labsupport.waits import wait_for

pytestmark = pytest.mark.timeout(420)
MIN = 60


@pytest.fixture(scope="module")
def production(lab_stack):
    """The pipeline switched on as lesson 02 ends; paused again afterwards, so later
    tests have a quiet machine."""
    cfg = get_config()
    lab_stack.up(["events-api"])
    switched_at = time.time()
    state = pipeline.switch_on(cfg)
    client = AirflowClient(cfg)
    yield {"cfg": cfg, "client": client, "state": state, "switched_at": switched_at}
    pipeline.switch_off(cfg)


def scheduled_since(client: AirflowClient, t: float) -> list[dict]:
    """Scheduled runs the scheduler queued at or after ``t``, oldest window first (a run
    queued earlier, e.g. by a lesson's sandbox before the restart, is not one of them)."""
    runs = client.request("GET", f"/dags/{client.dag_id}/dagRuns",
                          params={"run_type": "scheduled", "limit": 20, "order_by": "-run_after"})["dag_runs"]
    return sorted((r for r in runs if r.get("queued_at") and epoch(r["queued_at"]) >= t),
                  key=lambda r: r["run_after"])


def first_run_done(client: AirflowClient, since: float, timeout: float = 150) -> dict:
    """The first scheduled run queued at or after ``since``, once it has finished."""
    def done():
        runs = scheduled_since(client, since)
        return runs[0] if runs and runs[0]["state"] in ("success", "failed") else None

    return wait_for(done, timeout, f"the first scheduled run queued after {time.strftime('%H:%M:%S', time.gmtime(since))} "
                                   "to finish (`lab logs airflow`)", interval=1)


def events_in_topic(topic: str, since: float, until: float, published_after: float, cfg) -> list[str]:
    """Ids of the records of ``topic`` with an event time in ``[since, until)``, read from
    the first record the broker stamped at or after ``published_after`` to the end."""
    from kafka import KafkaConsumer, TopicPartition

    logging.getLogger("kafka").setLevel(logging.ERROR)
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id="test-pipeline-switch")
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.offsets_for_times({tp: int(published_after * 1000) for tp in tps})
        for tp in tps:
            consumer.seek(tp, starts[tp].offset if starts[tp] else ends[tp])
        pending = {tp for tp in tps if consumer.position(tp) < ends[tp]}
        ids, deadline = [], time.monotonic() + 60
        while pending:
            assert time.monotonic() < deadline, f"reading {topic} did not reach its end offsets in 60 s"
            for tp, records in consumer.poll(timeout_ms=500).items():
                for rec in records:
                    if rec.offset < ends[tp]:
                        ev = json.loads(rec.value)
                        if since <= epoch(ev["event_time"]) < until:
                            ids.append(ev["event_id"])
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return ids
    finally:
        consumer.close()


def test_lesson_02_ending_the_next_scheduled_run_lands_in_events(production):
    state, client, cfg = production["state"], production["client"], production["cfg"]
    assert state.flowing, state.describe()
    assert state.settings.topic == topics.EVENTS_TOPIC and not state.settings.catchup, state.settings

    run = first_run_done(client, production["switched_at"])
    assert run["state"] == "success", f"run {run['dag_run_id']} {run['state']}: see its log in the Airflow UI"
    result = client.result(run["dag_run_id"])
    since, until = epoch(run["data_interval_start"]), epoch(run["data_interval_end"])
    assert result["topic"] == topics.EVENTS_TOPIC, result
    profile = events.Profile(**_api_profile(cfg))
    expected = [e["event_id"] for e in events.events_between(since, until, profile)]
    assert result["published"] == len(expected) > 0, (result, len(expected))
    landed = events_in_topic(topics.EVENTS_TOPIC, since, until, epoch(run["start_date"]) - 5, cfg)
    assert sorted(set(landed)) == sorted(expected), \
        f"{len(set(expected) - set(landed))} of {len(expected)} ids of the run's window missing from events"


def test_off_stops_the_flow_and_on_resumes_at_the_present_without_catch_up(production):
    client, cfg = production["client"], production["cfg"]
    st = pipeline.switch_off(cfg)
    off_at = time.time()
    assert st.paused and not st.flowing, st.describe()

    # two minute boundaries pass while it is off: two windows a running DAG would have run
    quiet_until = (off_at // MIN + 2) * MIN + 10
    while time.time() < quiet_until:
        created = scheduled_since(client, off_at)
        assert not created, f"a run was scheduled while the pipeline was off: {created[0]['dag_run_id']}"
        time.sleep(2)  # the observation window's poll interval, not a synchronisation
    missed_until = time.time() // MIN * MIN  # the end of the latest window that ended while off

    on_at = time.time()
    st = pipeline.switch_on(cfg)
    assert st.flowing, st.describe()
    first = first_run_done(client, off_at)
    assert first["state"] == "success", f"run {first['dag_run_id']} {first['state']}"
    assert epoch(first["data_interval_end"]) >= missed_until, (
        f"the first run after `on` owns [{first['data_interval_start']}, {first['data_interval_end']}): "
        f"a minute missed while off, not the present (ended {time.strftime('%H:%M', time.gmtime(missed_until))})")
    assert client.result(first["dag_run_id"])["topic"] == topics.EVENTS_TOPIC
    caught_up = [r["dag_run_id"] for r in scheduled_since(client, off_at)
                 if epoch(r["data_interval_end"]) < missed_until]
    assert not caught_up, f"`on` created catch-up runs for minutes missed while off: {caught_up}"
    assert time.time() - on_at < 120, "switching on took longer than two minutes"


def _api_profile(cfg) -> dict:
    import httpx

    return httpx.get(f"{cfg.events_api}/profile", timeout=10).json()
