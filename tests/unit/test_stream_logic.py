"""Pure logic of the stream, the sink and the audit: no services, no Spark."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from labsupport.config import LabConfig
from labsupport.stack.services.stream import parse_metrics
from labsupport.stream.keys import bucket_of, buckets_between, shard_of
from labsupport.stream.metrics import StreamMetrics
from labsupport.stream.offsets import end_offsets
from labsupport.stream.settings import BadStreamSetting, StreamSettings, ephemeral_root
from labsupport.stream.sink import group_by_partition, minute_counts


def test_settings_round_trip_through_the_environment():
    s = StreamSettings(topic="t1", count_before_write=True, shards=2, trigger="5 seconds")
    assert StreamSettings.from_env(s.to_env()) == s


@pytest.mark.parametrize("env", [{"LAB_STREAM_SHARDS": "many"}, {"LAB_STREAM_BUCKET_WIDTH": "week"},
                                 {"LAB_STREAM_COUNT_BEFORE_WRITE": "maybe"}, {"LAB_STREAM_CONSISTENCY": "TWO"}])
def test_bad_settings_name_the_variable_or_the_choices(env):
    with pytest.raises(BadStreamSetting):
        StreamSettings.from_env(env)


def test_persistent_checkpoint_is_under_the_lab_home_and_ephemeral_is_not(tmp_path):
    cfg = LabConfig(home=tmp_path)
    assert StreamSettings(query_name="q").checkpoint_dir(cfg) == cfg.paths.checkpoints / "q"
    eph = StreamSettings(query_name="q", checkpoint="ephemeral").checkpoint_dir(cfg)
    assert eph.parent == ephemeral_root(cfg) and tmp_path not in eph.parents
    assert ephemeral_root(LabConfig(home=tmp_path / "other")) != ephemeral_root(cfg)


def test_every_unlogged_batch_touches_one_partition_and_no_row_is_lost():
    rows = [(f"b{i % 3}", i % 4, i) for i in range(100)]
    chunks = group_by_partition(rows, lambda r: (r[0], r[1]), 5)
    assert all(len(c) <= 5 and len({(r[0], r[1]) for r in c}) == 1 for c in chunks)
    assert sorted(r for c in chunks for r in c) == sorted(rows)


def test_big_payloads_split_a_partition_into_more_batches_under_the_byte_budget():
    rows = [("b", 0, "x" * (4000 if i % 10 == 0 else 100)) for i in range(200)]
    chunks = group_by_partition(rows, lambda r: (r[0], r[1]), 100, lambda r: len(r[2]), 20_000)
    assert all(sum(len(r[2]) for r in c) <= 20_000 for c in chunks)
    assert len(chunks) > 2 and sum(len(c) for c in chunks) == 200
    one_huge = group_by_partition([("b", 0, "x" * 50_000)], lambda r: (r[0], r[1]), 100, lambda r: len(r[2]), 20_000)
    assert one_huge == [[("b", 0, "x" * 50_000)]]  # a single row too big is still sent (and fails loudly)


def test_minute_counts_split_at_minute_boundaries():
    assert minute_counts([0, 59_999, 60_000, 61_000, 125_000]) == {0: 2, 60_000: 2, 120_000: 1}


def test_shard_and_bucket_keys():
    assert shard_of("sensor-0001", 4) == shard_of("sensor-0001", 4) < 4
    assert len({shard_of(f"sensor-{i:04d}", 4) for i in range(50)}) == 4
    t = datetime(2026, 11, 25, 7, 59, tzinfo=timezone.utc)
    assert bucket_of(t) == "2026-11-25T07"
    assert buckets_between(t, datetime(2026, 11, 25, 9, 0, 1, tzinfo=timezone.utc)) == \
        ["2026-11-25T07", "2026-11-25T08", "2026-11-25T09"]


@pytest.mark.parametrize("before", [False, True])
def test_counter_timing_is_one_flag(before):
    m = StreamMetrics("q", count_before_write=before)
    m.before_write(10)  # ...and then the write fails: after_write never runs
    assert m.value("rows_written_total") == (10 if before else 0)
    m.before_write(10)  # Spark retries the batch, this time it is confirmed
    m.after_write(0, 10, {"oversized": 2}, None, 0.1)
    assert m.value("rows_written_total") == (20 if before else 10)  # broken: 20 counted, 10 stored
    assert m.value("quarantined_total", reason="oversized") == 2 and m.value("batches_committed_total") == 1


def test_end_offsets_from_progress_sources():
    sources = [SimpleNamespace(endOffset='{"t":{"0":5,"1":7}}'), SimpleNamespace(endOffset=None)]
    assert end_offsets(sources) == {("t", 0): 5, ("t", 1): 7}


def test_parse_metrics_sums_labelled_samples():
    text = '# HELP x\nrows_written_total{query="a"} 3.0\nrows_written_total{query="b"} 2.0\nquery_active 1.0\n'
    assert parse_metrics(text) == {"rows_written_total": 5.0, "query_active": 1.0}


def test_schema_statements_substitute_the_keyspace():
    from labsupport import schema
    from labsupport.schema import SchemaProblem

    stmts = schema.statements(LabConfig(), "t_abc")
    assert stmts and all("streamlab." not in s for s in stmts) and any("t_abc.events_by_bucket" in s for s in stmts)
    assert all("IF NOT EXISTS" in s for s in stmts)
    with pytest.raises(SchemaProblem):
        schema.statements(LabConfig(), "Robert'); DROP")


# ---- poison records: splitting a failing batch ---------------------------------------------
def test_isolate_finds_each_poison_item_and_keeps_the_rest():
    from labsupport.stream.poison import isolate

    poison = {7, 8, 61}
    written, splits = [], []

    def attempt(part):
        if poison & set(part):
            raise ValueError(f"cannot write {sorted(poison & set(part))}")
        written.extend(part)
        return len(part)

    done, bad = isolate(range(100), attempt, lambda: splits.append(1))
    assert sorted(k for k, _ in bad) == sorted(poison) and all("cannot write" in str(e) for _, e in bad)
    assert sorted(written) == [i for i in range(100) if i not in poison] and sum(done) == 97
    assert len(splits) < 3 * 7 * len(poison)  # ~log2(n) splits per poison item, not n


def test_isolate_never_blames_records_for_a_transient_error():
    from cassandra.cluster import NoHostAvailable

    from labsupport.stream.poison import isolate

    def attempt(part):
        raise NoHostAvailable("Cassandra is down", {})

    with pytest.raises(NoHostAvailable):
        isolate([1, 2, 3], attempt)


def test_offset_ranges_per_partition():
    from labsupport.stream.poison import offset_ranges

    assert offset_ranges([(0, 5), (1, 2), (0, 9), (1, 3)]) == {0: (5, 9), 1: (2, 3)}


def test_every_quarantine_reason_and_counter_is_exported_at_zero_from_the_start():
    from prometheus_client import generate_latest

    from labsupport.stream.validation import ALL_REASONS

    m = StreamMetrics("q")
    text = generate_latest(m.registry).decode()
    for reason in ALL_REASONS:
        assert f'quarantined_total{{query="q",reason="{reason}"}} 0.0' in text
    for name in ("query_restarts_total", "poison_records_total", "batch_splits_total", "rows_written_total"):
        assert f'{name}{{query="q"}} 0.0' in text, name


def test_await_topic_waits_until_it_exists_and_refuses_after_its_timeout():
    from labsupport.stream.source_topic import TopicMissing, await_topic

    answers = iter([False, False, True])
    assert await_topic("b:9092", "t", timeout=5, interval=0.01, exists=lambda b, t: next(answers))
    with pytest.raises(TopicMissing):
        await_topic("b:9092", "t", timeout=0.05, interval=0.01, exists=lambda b, t: False)
    assert await_topic("b:9092", "t", timeout=None, should_stop=lambda: True, exists=lambda b, t: False) is False


def test_the_checkpoint_root_can_be_a_cluster_filesystem_uri(tmp_path):
    """LAB_SPARK_CHECKPOINT_ROOT: a local path or file:// URI stays a folder here; any
    other scheme goes to Spark as a URI, and asking for it as a local folder is a
    clear error, not a path that silently does not exist."""
    import pytest

    from labsupport.config import LabConfig
    from labsupport.stream.settings import BadStreamSetting, StreamSettings

    s = StreamSettings(query_name="q1")
    default = LabConfig.from_env({}, home=tmp_path)
    assert s.checkpoint_location(default) == str(tmp_path.resolve() / "checkpoints" / "q1")
    shared = default.replace(spark_checkpoint_root=f"file://{tmp_path}/shared/")
    assert s.checkpoint_dir(shared) == tmp_path / "shared" / "q1"
    remote = default.replace(spark_checkpoint_root="s3a://bucket/lab/")
    assert s.checkpoint_location(remote) == "s3a://bucket/lab/q1"
    with pytest.raises(BadStreamSetting):
        s.checkpoint_dir(remote)
    # the failure-mode switch keeps its meaning whatever the root: ephemeral is local /tmp
    assert "streamlab-ephemeral" in s.replace(checkpoint="ephemeral").checkpoint_location(remote)


def test_a_cluster_master_ships_the_jars_and_the_lab_python_to_executors(tmp_path):
    from labsupport.config import LabConfig
    from labsupport.stream.job import cluster_conf

    assert cluster_conf(LabConfig.from_env({}, home=tmp_path)) == {}
    conf = cluster_conf(LabConfig.from_env({"LAB_SPARK_MASTER": "spark://127.0.0.1:7077",
                                            "LAB_SPARK_EXECUTOR_CORES": "2"}, home=tmp_path))
    assert conf["spark.executor.cores"] == "2" and conf["spark.pyspark.python"].endswith("python")


def test_a_spark_conf_file_wins_over_the_labs_settings(tmp_path):
    from labsupport.config import LabConfig
    from labsupport.stream.job import session_conf

    (tmp_path / "jars" / "spark-kafka").mkdir(parents=True)
    (tmp_path / "jars" / "spark-kafka" / "spark-sql-kafka-0-10_2.13-4.2.0.jar").touch()
    conf_file = tmp_path / "spark-defaults.conf"
    conf_file.write_text("# a cluster's settings\nspark.driver.host 10.0.0.5\n"
                         "spark.kubernetes.container.image=registry.example/spark-lab:4.2.0\n"
                         "spark.executor.memory: 4g\n")
    env = {"LAB_SPARK_MASTER": "k8s://https://10.0.0.1:6443", "LAB_SPARK_CONF_FILE": str(conf_file)}
    conf = session_conf(LabConfig.from_env(env, home=tmp_path), "app", serve_ui=False)
    assert conf["spark.driver.host"] == "10.0.0.5" and conf["spark.executor.memory"] == "4g"
    assert conf["spark.kubernetes.container.image"] == "registry.example/spark-lab:4.2.0"
    assert conf["spark.master"] == "k8s://https://10.0.0.1:6443"  # the rest stays the lab's
    without = session_conf(LabConfig.from_env({}, home=tmp_path), "app", serve_ui=False)
    assert without["spark.driver.host"] == "127.0.0.1" and "spark.kubernetes.container.image" not in without


@pytest.mark.parametrize("content, problem", [(None, "cannot be read"), ("executor.memory=4g\n", "not Spark properties")])
def test_a_bad_spark_conf_file_is_one_line_naming_it(tmp_path, content, problem):
    from labsupport.config import LabConfig
    from labsupport.errors import LabError
    from labsupport.stream.job import user_conf

    conf_file = tmp_path / "spark-defaults.conf"
    if content is not None:
        conf_file.write_text(content)
    with pytest.raises(LabError, match=problem) as err:
        user_conf(LabConfig.from_env({"LAB_SPARK_CONF_FILE": str(conf_file)}, home=tmp_path))
    assert str(conf_file) in str(err.value)


def test_lab_up_without_names_leaves_the_optional_cluster_out_unless_the_stream_runs_on_it():
    from labsupport.config import get_config
    from labsupport.stack import services

    cfg = get_config()
    assert "spark-master" in services.names(cfg) and "spark-master" not in services.default_names(cfg)
    on_cluster = cfg.replace(spark_master=cfg.spark_cluster_url)
    assert {"spark-master", "spark-worker"} <= set(services.default_names(on_cluster))


@pytest.mark.parametrize("states, ready", [(["ALIVE"], True), (["ALIVE", "DEAD"], True), (["DEAD", "ALIVE"], True),
                                           (["DEAD"], False), ([], False)])
def test_a_restarted_worker_is_ready_beside_its_dead_predecessor(monkeypatch, states, ready):
    """After a kill -9 the master lists the dead worker (state DEAD) beside the new one at
    the same web UI port, in no particular order."""
    from labsupport.config import get_config
    from labsupport.stack.services import spark

    cfg = get_config()
    workers = [{"webuiaddress": f"http://127.0.0.1:{cfg.spark_worker_ui_port}", "state": s} for s in states]
    workers.append({"webuiaddress": "http://127.0.0.1:1", "state": "ALIVE"})  # someone else's worker
    monkeypatch.setattr(spark, "master_state", lambda _cfg: {"workers": workers})
    assert (spark.SparkWorkerService(cfg).probe() is None) == ready
