"""Issue 17 on the real stack: the stream on Spark's own standalone cluster (a master and
a worker as lab services), its executors on the worker, its data exactly once."""

from __future__ import annotations

import pytest

from labsupport.config import get_config
from labsupport.events import Profile
from labsupport.ingest import topics
from labsupport.lessons import sandboxes
from labsupport.lessons.audit import audit
from labsupport.lessons.feed import Feeder
from labsupport.observe import prom
from labsupport.stack import services
from labsupport.stack.services.spark import master_state
from labsupport.waits import wait_for

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def spark_cluster(lab_stack):
    """The master and the worker, stopped again afterwards unless they were running."""
    names = ["spark-master", "spark-worker"]
    before = [n for n in names if services.service(n).running()]
    lab_stack.up(names)
    yield get_config().replace(spark_master=get_config().spark_cluster_url)
    started = [n for n in names if n not in before]
    if started:
        lab_stack.down(started)


def _executors_on_workers(cfg) -> int:
    """Cores the master has handed to the stream's application on live workers."""
    return sum(w["coresused"] for w in master_state(cfg)["workers"] if w["state"] == "ALIVE")


def test_the_stream_runs_on_the_worker_and_survives_kill9_of_worker_and_driver_with_a_clean_audit(spark_cluster):
    """The stream's application runs its executors on the lab's worker, and the cluster's
    own metrics reach Prometheus. The worker dies with its executor: the driver waits with
    its tasks pending and gets a new executor once the worker is back. The driver (the
    `stream` service) dies: the master drops its application, and the restarted service
    resumes from its checkpoint. Either way nothing is missing and nothing is counted
    twice. (One stream for all of it: each start on the cluster costs ~30 s of CI.)"""
    from labsupport import stack

    cfg = spark_cluster
    svc = sandboxes.stream_sandbox(f"clusterkill_{sandboxes.unique_tag()}", cfg=cfg)
    try:
        s = svc.settings
        state = master_state(cfg)
        assert [a["name"] for a in state["activeapps"]] == ["streamlab-stream"], state["activeapps"]
        assert _executors_on_workers(cfg) >= 1, "no executor on the worker"
        profile = Profile(rate=100, burst_every=0, seed=s.topic)
        with Feeder(s.topic, profile, cfg) as feed:
            wait_for(lambda: svc.metric("batches_committed_total", down=0) >= 2, 180, "two batches on the cluster")
            # the cluster's own metrics reach Prometheus like every other service's
            wait_for(lambda: prom.query('metrics_master_aliveWorkers_Value{job="spark-master"} >= 1'), 60,
                     "Prometheus to scrape the master")
            wait_for(lambda: prom.query('up{job="spark-worker"} == 1'), 60, "Prometheus to scrape the worker")

            assert stack.kill("spark-worker", cfg=cfg)
            wait_for(lambda: _executors_on_workers(cfg) == 0, 60, "the master to see the worker and its executor gone")
            committed = svc.metric("batches_committed_total", down=0)
            stack.up(["spark-worker"], cfg=cfg)
            wait_for(lambda: svc.metric("batches_committed_total", down=0) >= committed + 2, 300,
                     "two more batches on a new executor once the worker is back")
            assert _executors_on_workers(cfg) >= 1

            app_before = {a["id"] for a in master_state(cfg)["activeapps"]}
            assert svc.kill()
            wait_for(lambda: not ({a["id"] for a in master_state(cfg)["activeapps"]} & app_before), 120,
                     "the master to drop the dead driver's application")
            svc.start()  # the same settings: the same checkpoint
            wait_for(lambda: svc.metric("batches_committed_total", down=0) >= 2, 300,
                     "two batches from the restarted driver")
            since, until = feed.stop()
        topics.wait_caught_up(s.topic, s.group_id, timeout=300, cfg=cfg)
        report = audit(since, until, profile, keyspace=s.keyspace, settings=s, cfg=cfg)
        assert report.produced > 0 and report.clean and report.landed == report.produced, report.as_dict()
        assert svc.metric("query_restarts_total", down=0) == 0  # resumed from the checkpoint, not a retry loop
    finally:
        sandboxes.restore_stream(start=False)
