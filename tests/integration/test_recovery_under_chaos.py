"""Recovery under chaos: random ``kill -9``s while events flow, each victim brought back the
way a learner would (`lab up`), and afterwards every acknowledged event stored exactly once.

On the three-broker layout (lesson 09's; its data is kept apart from the one-broker
layout's) with a sandboxed stream of its own (topic, keyspace, checkpoint), a feeder
publishes a few hundred known events per second with ``acks=all``. Each of a broker (one of the
three), Cassandra, Airflow and Prometheus is killed once and the stream twice, in a random order (the
seed is printed; ``LAB_CHAOS_SEED`` replays a run). Between two kills the stream must commit a batch: the
pipeline is shown to be moving again, not assumed to be. The stream is restarted only when it
is the one killed: it rides out a broker's and Cassandra's deaths on its own. Last, a
commit marker damaged while the stream is stopped must be recovered by its next start.

Then: 0 missing, 0 counted twice, 0 stored twice in ``events_by_bucket`` (the audit, against
the ids actually in the topic) and every id exactly once in ``events_by_source`` (counted in
Cassandra), and every service healthy. The lab is put back as found: the one-broker layout,
Airflow on its own settings, the default stream if it ran.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest

from labsupport import schema, stack
from labsupport.config import get_config
from labsupport.events import Profile, events_between
from labsupport.ingest.topics import wait_caught_up
from labsupport.lessons.audit import audit
from labsupport.lessons.feed import Feeder
from labsupport.lessons.replication import restore_layout, use_kafka_brokers
from labsupport.lessons.sandboxes import stream_sandbox, unique_tag
from labsupport.observe import prom
from labsupport.stack import services
from labsupport.stack.services.stream import StreamService
from labsupport.stream import checkpoint_files
from labsupport.stream.keys import day_of
from labsupport.times import utc
from labsupport.waits import wait_for, wait_until_no_problems

pytestmark = pytest.mark.timeout(900)

RATE = 300  # events/s: a few hundred, light enough for 2 cores
#: each kind of victim is killed once per run, the stream twice (at random points of a batch:
#: this is the lab's kill -9 test of the stream), in a random order, a random broker of three
KINDS = ("broker", "cassandra", "stream", "airflow", "prometheus", "stream")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")


def _batches(svc: StreamService) -> float:
    return svc.metric("batches_committed_total", down=-1.0)


def _by_source_counts(keyspace: str, ids_at: dict[str, tuple[str, str]], since, until) -> Counter:
    """How many rows of ``events_by_source`` hold each id, read partition by partition
    ((source, day) of every produced event) over the audited range."""
    cluster, session = schema.connect(get_config())
    try:
        stmt = session.prepare(f"SELECT event_id FROM {keyspace}.events_by_source WHERE source_id = ? AND day = ? "
                               "AND event_time >= ? AND event_time < ?")
        found: Counter = Counter()
        for source, day in set(ids_at.values()):
            found.update(r.event_id for r in session.execute(stmt, (source, day, utc(since), utc(until))))
        return found
    finally:
        cluster.shutdown()


def test_random_kill9s_while_events_flow_lose_nothing_and_count_nothing_twice(lab_stack, capsys):
    seed = int(os.environ.get("LAB_CHAOS_SEED") or time.time())
    rng, tag = random.Random(seed), unique_tag()
    victims = [rng.choice(BROKERS) if kind == "broker" else kind for kind in rng.sample(KINDS, len(KINDS))]
    with capsys.disabled():
        print(f"\nchaos seed {seed} (LAB_CHAOS_SEED={seed} replays this run): {' → '.join(victims)}")
    before = get_config()
    stream_was_running = StreamService(before).running()
    airflow_was_running = services.service("airflow", before).running()
    use_kafka_brokers(3)
    cfg = get_config()
    stack.up(["prometheus", "airflow"], cfg=before)  # Airflow keeps the learner's settings throughout
    svc = stream_sandbox(f"chaos{tag}", cfg)
    profile = Profile(rate=RATE, burst_every=0, seed=f"chaos-{tag}")
    kills: list[tuple[str, float]] = []
    try:
        with Feeder(svc.settings.topic, profile, cfg) as feeder:
            for victim in victims:
                target = _batches(svc) + 1
                wait_for(lambda: _batches(svc) >= target, 120, f"a batch committed before killing {victim}")
                time.sleep(rng.uniform(0, 1.5))  # jitter: the kill lands anywhere in a batch
                started = time.monotonic()
                if victim == "stream":
                    assert svc.kill() and not svc.running()
                    svc.start()
                else:
                    assert stack.kill(victim, cfg=cfg), f"{victim} was not running"
                    stack.up([victim], cfg=before if victim == "airflow" else cfg)
                kills.append((victim, round(time.monotonic() - started, 1)))
                assert feeder.error is None, f"the feeder failed after killing {victim}: {feeder.error!r}"
            since, until = feeder.stop()
        with capsys.disabled():
            print(f"kills (victim, seconds until back): {kills}; {(until - since).total_seconds():.0f} s of events")
        wait_caught_up(svc.settings.topic, svc.settings.group_id, timeout=180, cfg=cfg)

        report = audit(since, until, keyspace=svc.settings.keyspace, published_to=svc.settings.topic, cfg=cfg)
        assert report.produced >= RATE * 30, report
        assert (report.missing, report.duplicated, report.under_counted, report.stored_twice, report.unexpected) == \
            (0, 0, 0, 0, 0), report
        assert report.landed == report.produced

        ids_at = {e["event_id"]: (e["source_id"], day_of(utc(e["event_time"])))
                  for e in events_between(since, until, profile)}
        assert len(ids_at) == report.produced  # the feeder published the whole profile
        by_source = _by_source_counts(svc.settings.keyspace, ids_at, since, until)
        assert {i for i, n in by_source.items() if n != 1} == set(), "events_by_source holds an id twice"
        assert set(by_source) == set(ids_at), f"events_by_source misses {len(set(ids_at) - set(by_source))} ids"

        # a commit marker damaged while the stream was stopped is recovered by the next start
        # (labsupport.stream.checkpoint_files): its batch runs again and is counted once
        svc.stop(grace=20)
        newest = checkpoint_files.newest(svc.checkpoint / "commits")
        newest.write_text('v1\n{"nextBatchWatermar')  # cut short
        capsys.readouterr()
        svc.start()
        assert f"commits/{newest.name} was damaged" in capsys.readouterr().out
        again = audit(since, until, keyspace=svc.settings.keyspace, published_to=svc.settings.topic, cfg=cfg)
        assert (again.landed, again.missing, again.duplicated, again.stored_twice) == (report.landed, 0, 0, 0), again

        def unhealthy() -> list[str]:
            """Each service not healthy, with what its readiness probe says now."""
            named = [(n, services.service(n, cfg)) for n in ("kafka-controller", *BROKERS, "cassandra", "prometheus")]
            named += [("stream", svc), ("airflow", services.service("airflow", before))]
            return [f"{n}: {s.probe() if s.running() else s.state()}" for n, s in named if not s.healthy()]

        # Prometheus is healthy once it has scraped every running target: the stream just restarted
        wait_until_no_problems(unhealthy, 60, "every service healthy after the chaos")
        # and it scrapes the stream's own metrics and Spark's PrometheusServlet again
        # (its counters restart at 0 with the process: the series, not its value, is the proof)
        wait_for(lambda: prom.query('batches_committed_total{job="stream"}', cfg), 60, "the stream scraped")
        wait_for(lambda: prom.query('up{job="spark"} == 1', cfg), 60, "Spark's PrometheusServlet scraped")
    finally:
        svc.stop(grace=20)
        restore_layout(stream_was_running)
        if not airflow_was_running:
            stack.down(["airflow"], cfg=before)
