"""The ingestion DAG against the real events API, the real Airflow scheduler and Kafka.

The session's DAG starts ten minutes back (see ``ingest_stack``), so the scheduler runs
those minute windows at once (catchup). Each test owns a range of those windows, with
fault rules scoped to exactly its range, set before the DAG is unpaused:

    [S+0, S+3)  clean            three consecutive scheduled windows
    [S+3, S+6)  50 % 500s        retries make every run succeed
    [S+6, S+9)  outage           runs fail, then a backfill fills them
    [S+9, S+10) bad 3rd page     first attempt fails cleanly, the retry publishes

Audits compare what the topic holds with what ``labsupport.events`` says the API
serves for each window. Every wait polls with a deadline.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime

import pytest

from labsupport import events
from labsupport.ingest import topics
from labsupport.times import epoch, to_iso

pytestmark = pytest.mark.timeout(600)
MIN = 60


@pytest.fixture(scope="module")
def plan(ingest_stack):
    s = ingest_stack["start"]
    api, client = ingest_stack["api"], ingest_stack["client"]
    api.post("/faults/rules", json={"name": "flaky", "error_rate": 0.5, "seed": 7,
                                    "scope_since": s + 3 * MIN, "scope_until": s + 6 * MIN})
    api.post("/faults/rules", json={"name": "outage", "outage_s": 3600,
                                    "scope_since": s + 6 * MIN, "scope_until": s + 9 * MIN})
    api.post("/faults/rules", json={"name": "bad-page", "malformed_rate": 1.0, "malformed_kind": "json",
                                    "skip": 2, "budget": 1, "scope_since": s + 9 * MIN, "scope_until": s + 10 * MIN})
    client.unpause()
    return {**ingest_stack, "profile": events.Profile(**ingest_stack["profile"])}


def scheduled_runs(client, since: float, until: float) -> dict[float, dict]:
    """Scheduled runs whose window starts in [since, until), by window start."""
    return {epoch(r["data_interval_start"]): r for r in client.runs(run_type="scheduled", limit=200)
            if since <= epoch(r["data_interval_start"]) < until}


def wait_windows(client, since: float, until: float, states: set[str], timeout: float) -> dict[float, dict]:
    """Poll until every minute window of [since, until) has a scheduled run in ``states``."""
    want = int((until - since) // MIN)

    def reached(_runs):
        got = scheduled_runs(client, since, until)
        return got if len(got) == want and all(r["state"] in states for r in got.values()) else None

    return client.wait_for(reached, timeout=timeout, what=f"{want} windows from {to_iso(since)} in {states}")


def topic_events(topic: str, since: float, until: float) -> list[dict]:
    return [e for e in topics.replay(topic) if since <= epoch(e["event_time"]) < until]


def expected_ids(profile, since: float, until: float) -> list[str]:
    return [e["event_id"] for e in events.events_between(since, until, profile)]


def assert_exactly_once(got: list[dict], profile, since: float, until: float) -> None:
    ids = Counter(e["event_id"] for e in got)
    want = expected_ids(profile, since, until)
    assert len(want) > 0
    dupes = [i for i, n in ids.items() if n > 1]
    assert not dupes, f"{len(dupes)} events published more than once, e.g. {dupes[:3]}"
    assert set(ids) == set(want), f"missing {len(set(want) - set(ids))}, unexpected {len(set(ids) - set(want))}"
    truth = {e["event_id"]: e for e in events.events_between(since, until, profile)}
    assert all(e == truth[e["event_id"]] for e in got)


def test_events_topic_is_partitioned_and_kept_for_replay(ingest_stack):
    topics.ensure_topic(cfg=ingest_stack["cfg"])
    assert topics.ensure_topic(cfg=ingest_stack["cfg"]) is False  # idempotent
    assert topics.topic_configs() == {"retention.ms": "-1", "retention.bytes": "-1"}


def test_three_consecutive_scheduled_windows_publish_exactly_the_api_events(plan):
    s, client = plan["start"], plan["client"]
    runs = wait_windows(client, s, s + 3 * MIN, {"success", "failed"}, timeout=180)
    assert {r["state"] for r in runs.values()} == {"success"}
    for start, run in sorted(runs.items()):
        stats = client.result(run["dag_run_id"])
        n = events.count_between(start, start + MIN, plan["profile"])
        assert stats["fetched"] == stats["published"] == n
        assert epoch(stats["since"]) == start and epoch(stats["until"]) == start + MIN
        assert_exactly_once(topic_events(plan["topic"], start, start + MIN), plan["profile"], start, start + MIN)


def test_half_of_requests_failing_every_run_still_succeeds(plan):
    s, client, api = plan["start"], plan["client"], plan["api"]
    since, until = s + 3 * MIN, s + 6 * MIN
    runs = wait_windows(client, since, until, {"success", "failed"}, timeout=240)
    assert {r["state"] for r in runs.values()} == {"success"}
    flaky = next(r for r in api.get("/faults").json()["rules"] if r["name"] == "flaky")
    assert flaky["faulted"] >= 2, "the 50% fault never bit: the test proved nothing"
    got = topic_events(plan["topic"], since, until)
    # a retried window may only ever re-publish identical records; here nothing twice
    by_id = defaultdict(set)
    for e in got:
        by_id[e["event_id"]].add(repr(sorted(e.items())))
    assert all(len(v) == 1 for v in by_id.values())
    assert_exactly_once(got, plan["profile"], since, until)


def test_outage_then_backfill_fills_each_missed_window_exactly_once(plan):
    s, client, api = plan["start"], plan["client"], plan["api"]
    since, until = s + 6 * MIN, s + 9 * MIN
    failed = wait_windows(client, since, until, {"success", "failed"}, timeout=300)
    assert {r["state"] for r in failed.values()} == {"failed"}, "the outage should have failed these runs"
    assert topic_events(plan["topic"], since, until) == []

    assert api.delete("/faults/rules/outage").status_code == 200
    backfill = client.backfill(since, until - MIN, reprocess="failed")
    assert backfill["id"]

    def refilled(_runs):
        got = runs_in(client, since, until)
        return got if len(got) == 3 and all(r["state"] == "success" for r in got) else None

    runs = client.wait_for(refilled, timeout=180, what="backfilled windows succeeded")
    assert sorted(epoch(r["data_interval_start"]) for r in runs) == [since, since + MIN, since + 2 * MIN]
    assert_exactly_once(topic_events(plan["topic"], since, until), plan["profile"], since, until)


def runs_in(client, since: float, until: float) -> list[dict]:
    """Scheduled and backfill runs of windows in [since, until): one per window expected."""
    return [r for r in client.runs(limit=300)
            if r["run_type"] in ("scheduled", "backfill") and since <= epoch(r["data_interval_start"]) < until]


def test_malformed_page_fails_the_attempt_and_publishes_nothing_from_it(plan):
    s, client = plan["start"], plan["client"]
    since, until = s + 9 * MIN, s + 10 * MIN
    runs = wait_windows(client, since, until, {"success", "failed"}, timeout=300)
    run = runs[since]
    assert run["state"] == "success"
    ti = client.task_instance(run["dag_run_id"])
    assert ti["try_number"] == 2, "the first attempt should have failed on the malformed page"
    log = client.task_log(run["dag_run_id"], 1)
    assert "malformed response from the events API (page 3" in log and "invalid JSON" in log
    # pages 1-2 of the failed attempt were valid, yet nothing of them reached Kafka twice
    assert_exactly_once(topic_events(plan["topic"], since, until), plan["profile"], since, until)


def test_manual_run_fetches_the_last_full_minute_before_its_logical_date(plan):
    client = plan["client"]
    topic = f"{plan['topic']}-manual"
    topics.ensure_topic(topic)
    logical = time.time()
    run = client.trigger(conf={"topic": topic}, logical_date=logical)
    assert client.wait_run(run["dag_run_id"], timeout=120)["state"] == "success"
    stats = client.result(run["dag_run_id"])
    end = int(logical) // MIN * MIN
    assert (epoch(stats["since"]), epoch(stats["until"])) == (end - MIN, end)
    assert_exactly_once(list(topics.replay(topic)), plan["profile"], end - MIN, end)


def test_a_50000_event_window_is_published_and_timed(plan, record_property):
    client = plan["client"]
    topic = f"{plan['topic']}-bench"
    topics.ensure_topic(topic)
    since = plan["start"] - 3600 * 24  # a window no other test touches
    until = since + 50_000 / plan["profile"].rate
    assert events.count_between(since, until, plan["profile"]) == 50_000
    t = time.monotonic()
    run = client.trigger(since=since, until=until, conf={"topic": topic, "page_size": 10_000})
    assert client.wait_run(run["dag_run_id"], timeout=240)["state"] == "success"
    wall = time.monotonic() - t
    stats = client.result(run["dag_run_id"])
    assert stats["fetched"] == stats["published"] == 50_000
    got = list(topics.replay(topic))
    assert len(got) == 50_000 and len({e["event_id"] for e in got}) == 50_000
    for k in ("fetch_s", "publish_s", "events_per_s"):
        record_property(k, stats[k])
    record_property("run_wall_s", round(wall, 1))
    print(f"\n50k window: fetch {stats['fetch_s']} s, publish {stats['publish_s']} s "
          f"({stats['events_per_s']} events/s), whole run {wall:.1f} s")


def test_replay_from_the_beginning_returns_everything_published(plan):
    client = plan["client"]
    ok = [r for r in client.runs(limit=300) if r["state"] == "success" and r["run_type"] in ("scheduled", "backfill")]
    assert len(ok) >= 10  # the ten windows of the tests above, at least
    published = [client.result(r["dag_run_id"]) for r in ok]
    published = [p for p in published if p["topic"] == plan["topic"]]
    replayed = Counter(e["event_id"] for e in topics.replay(plan["topic"]))
    for p in published:
        want = expected_ids(plan["profile"], epoch(p["since"]), epoch(p["until"]))
        assert len(want) == p["published"]
        assert all(replayed[i] >= 1 for i in want), f"window {p['since']} not fully replayed"
    assert sum(replayed.values()) >= sum(p["published"] for p in published)


@pytest.mark.stack_teardown
def test_airflow_stops_with_no_orphaned_workers(plan):
    import psutil

    from labsupport.stack import procs, services

    svc = services.service("airflow", plan["cfg"])
    rec = svc.record()
    assert rec is not None
    family = {p.pid for p in procs.group_members(rec.pgid)}
    family |= {c.pid for c in psutil.Process(rec.pid).children(recursive=True)}
    assert len(family) >= 5  # bash + api-server + scheduler + dag-processor + triggerer (+ workers)
    assert svc.stop()

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    alive = [p for p in family if running(p)]
    assert alive == [], f"left behind: {alive}"


def test_an_event_kafka_cannot_take_is_set_aside_and_its_window_succeeds(plan):
    """The API's `oversized` fault serves a few events past Kafka's record limit, the same
    ones on every request (as a real upstream's bad record). The run sets them aside to
    the dead-letter topic with the reason, publishes the rest on its first attempt, and
    the topic audit counts them as dead-lettered, not missing."""
    from labsupport.ingest.events_api.faults import picked
    from labsupport.lessons.audit import topic_windows

    client, api, profile = plan["client"], plan["api"], plan["profile"]
    share = 0.001
    # a minute two days back that no other test touches, and in which 1-3 events are picked
    # (computed, not hoped for: the ids are a pure function of time)
    since = next(t for t in (plan["start"] - 2 * 86_400 - k * MIN for k in range(200))
                 if 1 <= sum(picked(i, share) for i in expected_ids(profile, t, t + MIN)) <= 3)
    until = since + MIN
    want = expected_ids(profile, since, until)
    aside = sorted(i for i in want if picked(i, share))
    topic = f"{plan['topic']}-oversized"
    topics.ensure_topic(topic)
    api.post("/faults/rules", json={"name": "oversized", "oversized_share": share,
                                    "scope_since": since, "scope_until": until})
    try:
        run = client.trigger(since=since, until=until, conf={"topic": topic})
        assert client.wait_run(run["dag_run_id"], timeout=180)["state"] == "success"
    finally:
        api.delete("/faults/rules/oversized")
    assert client.task_instance(run["dag_run_id"])["try_number"] == 1, "one bad record failed an attempt"
    stats = client.result(run["dag_run_id"])
    assert (stats["fetched"], stats["published"], stats["dead_lettered"]) == (len(want), len(want) - len(aside), len(aside))
    letters = list(topics.replay(topics.dead_letter_topic(topic)))
    assert sorted(letter["event_id"] for letter in letters) == aside
    assert all("over the 1,048,576-byte limit" in letter["reason"] and letter["bytes"] > 1_048_576 for letter in letters)
    published = topic_events(topic, since, until)
    assert sorted(e["event_id"] for e in published) == sorted(set(want) - set(aside))
    [row] = topic_windows(topic, since, until, profile)
    assert (row["missing"], row["dead_lettered"], row["duplicated"], row["exactly_once"]) == (0, len(aside), 0, True)
