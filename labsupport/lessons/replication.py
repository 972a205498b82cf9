"""Replication health on the three-broker cluster, for lesson 09.

* `use_kafka_brokers(n)` switches the lab's Kafka layout — one broker, or a KRaft
  cluster of ``n`` brokers — and points this process (`set_config`) and Prometheus's
  scrape targets at it. The two layouts share ports but not data directories
  (``data/kafka`` against ``data/kafka-controller`` and ``data/kafka-1..n``), so the
  learner's single-broker topics are left exactly as they were and come back with it.
* `broker_outage` kills one broker while a feeder (acks=all) and a sandboxed stream
  run, and measures what Prometheus reports and what the audit finds.
* `refused_writes` kills a second broker and counts acks=all writes the leader refuses
  (NotEnoughReplicas, below ``min.insync.replicas``) — errors a producer sees, not a
  silent loss; `brokers_back` restarts them and waits for 0 under-replicated partitions.
* `us_per_event` / `predicted_capacity`: the arithmetic of scale-out by measurement,
  read from `lab bench stream`'s result (a plain dict: this layer may not import bench).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from labsupport.config import LabConfig, get_config, set_config
from labsupport.events import Profile
from labsupport.ingest import topics
from labsupport.lessons.audit import AuditReport, audit
from labsupport.lessons.feed import Feeder
from labsupport.lessons.sandboxes import stream_sandbox
from labsupport.observe import pipeline_stats, prom
from labsupport.stack import services
from labsupport.stack.services.kafka import brokers_of, kafka_nodes, running_kafka
from labsupport.waits import TimedOut, wait_for

#: the pipeline view's own query (stated once, in pipeline_stats): the sum over brokers
URP = pipeline_stats.queries()["under_replicated"]
#: how many of the layout's brokers report the gauge: a dead broker's series is missing,
#: not 0. Only the layout's own services count: a restarted Prometheus still shows the
#: other layout's last series (no staleness markers across its restart) for 5 minutes
URP_SERIES = ('count(count by (service) (kafka_server_replicamanager_underreplicatedpartitions'
              '{{job="kafka",service=~"{brokers}"}}))')


# ---- the layout ----------------------------------------------------------------------------
def use_kafka_brokers(n: int, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """The lab's Kafka as ``n`` brokers (1: the single node), running and scraped.

    Stops the other layout if it runs, and the `stream` service first (its checkpoint
    holds the other layout's offsets: it must never read a topic of the same name on
    this one); starts this layout; re-renders Prometheus's targets and reloads it; and
    makes this layout the config of this process (`get_config`). Returns the seconds."""
    from labsupport import stack
    from labsupport.stack.services.prometheus import PrometheusService

    started = time.monotonic()
    base = cfg or get_config()
    want = base.replace(kafka_brokers=n)
    found = brokers_of(running_kafka(base), base)
    if found is not None and ((found == 1) != (n == 1) or found > n):
        progress(f"kafka: switching from {'one broker' if found == 1 else f'{found} brokers'} to "
                 f"{'one broker' if n == 1 else f'{n} brokers'} (each layout keeps its own data)")
        stack.down(["stream"], cfg=base, progress=progress)
        stack.down(["kafka"], cfg=base.replace(kafka_brokers=found), progress=progress)
    stack.up(["kafka"], cfg=want, progress=progress)
    prometheus = PrometheusService(want)
    if prometheus.running():
        prometheus.reload(progress)
    else:
        stack.up(["prometheus"], cfg=want, progress=progress)
    set_config(want)
    return time.monotonic() - started


def restore_layout(stream_was_running: bool, progress: Callable[[str], None] = print) -> float:
    """Kafka back to the layout the lab is configured for (``LAB_KAFKA_BROKERS``: one
    broker unless the learner chose more), then the default stream if it ran before the
    lesson — only there: its checkpoint holds that layout's offsets. Returns the seconds."""
    from labsupport.lessons.sandboxes import restore_stream

    started = time.monotonic()
    use_kafka_brokers(LabConfig.from_env().kafka_brokers, progress=progress)
    restore_stream(get_config(), progress, start=stream_was_running)
    from labsupport.lessons.pipeline import resume_after  # paused by reset_to(9)

    resume_after("lesson09", get_config(), progress)
    return time.monotonic() - started


# ---- what Prometheus says ----------------------------------------------------------------------
def under_replicated(cfg: LabConfig | None = None) -> float:
    """Under-replicated partitions, summed over the brokers Prometheus scrapes (-1: no answer)."""
    return prom.scalar(URP, cfg or get_config(), default=-1)


def seen_down(name: str, cfg: LabConfig | None = None) -> bool:
    """Prometheus's last scrape of broker ``name`` failed."""
    return prom.target_down("kafka", name, cfg or get_config())


def healthy(cfg: LabConfig | None = None) -> bool:
    """0 under-replicated partitions, reported by every broker of the layout."""
    cfg = cfg or get_config()
    brokers = "|".join(n.name for n in kafka_nodes(cfg) if n.is_broker)
    return (prom.scalar(URP_SERIES.format(brokers=brokers), cfg, default=0) == cfg.kafka_brokers
            and under_replicated(cfg) == 0)


def partition_replicas(cfg: LabConfig | None = None) -> list[dict]:
    """Every partition of every topic (internal ones too): topic, partition, leader,
    replicas and in-sync replicas, as the cluster's metadata says now."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=(cfg or get_config()).bootstrap_servers, client_id="lab-lesson09")
    try:
        return sorted(({"topic": t["name"], "partition": p["partition_index"], "leader": p["leader_id"],
                        "replicas": sorted(p["replica_nodes"]), "isr": sorted(p["isr_nodes"])}
                       for t in admin.describe_topics() for p in t["partitions"]),
                      key=lambda r: (r["topic"], r["partition"]))
    finally:
        admin.close()


# ---- one broker down ----------------------------------------------------------------------------
@dataclass
class Outage:
    broker: str
    topic: str = ""
    keyspace: str = ""
    urp_before: float = 0.0
    urp_peak: float = 0.0              # the most Prometheus reported while the broker was down
    seen_down_s: float = 0.0           # kill -> Prometheus reporting URP > 0 and the broker down
    published_while_down: int = 0     # events the feeder got acknowledged (acks=all) meanwhile
    batches_while_down: int = 0       # micro-batches the stream committed meanwhile
    view: dict = field(default_factory=dict)   # the pipeline view's numbers while down
    report: AuditReport | None = None

    def summary(self) -> dict:
        r = self.report
        return {"broker killed": self.broker, "URP before": self.urp_before, "URP while down": self.urp_peak,
                "seconds until seen": round(self.seen_down_s, 1), "events acked while down": self.published_while_down,
                "batches committed while down": self.batches_while_down,
                **({"produced": r.produced, "landed": r.landed, "lost (missing)": r.missing,
                    "duplicated": r.duplicated} if r else {})}


def _batches(svc) -> int:
    return svc.metric("batches_committed_total", down=0.0) or 0


class BrokerOutage:
    """One run: ``start()`` a stream sandbox fed at ``rate`` events/s (acks=all) until it
    committed its first batches (its offsets group, hence ``__consumer_offsets``, exists
    from then on); ``kill(broker, down_s)`` kills the broker -9, feeds for at least
    ``down_s`` seconds while Prometheus reports it down, stops the feed, waits for the
    stream to catch up and audits. The broker stays down (`refused_writes` goes on)."""

    def __init__(self, name: str = "lesson09", rate: int = 100, cfg: LabConfig | None = None, progress=print,
                 **stream_settings):
        self.name, self.rate, self.progress = name, rate, progress
        self.cfg = cfg or get_config()
        self.stream_settings = stream_settings
        self.svc = self.feed = self.profile = None

    def start(self) -> "BrokerOutage":
        wait_for(lambda: healthy(self.cfg), 120, "0 under-replicated partitions before the run", interval=2)
        self.svc = stream_sandbox(self.name, cfg=self.cfg, progress=self.progress, **self.stream_settings)
        s = self.svc.settings
        self.profile = Profile(rate=self.rate, burst_every=0, seed=f"{self.name}-{s.topic}")
        self.feed = Feeder(s.topic, self.profile, self.cfg).start()
        wait_for(lambda: _batches(self.svc) >= 2, 180, "the stream's first batches", interval=1)
        return self

    @property
    def topic(self) -> str:
        return self.svc.settings.topic

    def kill(self, broker: str = "kafka-2", down_s: float = 20) -> Outage:
        from labsupport import stack

        cfg, feed, svc, s = self.cfg, self.feed, self.svc, self.svc.settings
        out = Outage(broker, s.topic, s.keyspace, urp_before=under_replicated(cfg))
        try:
            stack.kill(broker, cfg=cfg, progress=self.progress)
            t0, published0, batches0 = time.monotonic(), feed.published, _batches(svc)
            wait_for(lambda: seen_down(broker, cfg) and under_replicated(cfg) > 0, 90,
                     f"Prometheus to scrape {broker} as down and report under-replicated partitions", interval=1)
            out.seen_down_s = time.monotonic() - t0

            def fed_long_enough() -> bool:
                out.urp_peak = max(out.urp_peak, under_replicated(cfg))
                return (feed.published - published0 >= self.rate * down_s and _batches(svc) - batches0 >= 2
                        and time.monotonic() - t0 >= down_s)

            wait_for(fed_long_enough, down_s + 120,
                     f"{down_s:.0f} s of events acknowledged and landed with {broker} down", interval=1)
            out.view = pipeline_stats.collect(cfg=cfg, keyspace=s.keyspace).as_dict()
            out.urp_peak = max(out.urp_peak, out.view["under_replicated"])
            out.published_while_down = feed.published - published0
            out.batches_while_down = _batches(svc) - batches0
        finally:
            since, until = feed.stop()
        topics.wait_caught_up(s.topic, s.group_id, timeout=180, cfg=cfg)
        out.report = audit(since, until, self.profile, keyspace=s.keyspace, settings=s, topic=s.topic, cfg=cfg)
        self.progress(f"{self.name}: {out.summary()}")
        return out


# ---- two brokers down ----------------------------------------------------------------------------
@dataclass
class Refusals:
    killed: list[str]
    attempts: int = 0
    refused: int = 0                   # NotEnoughReplicas(AfterAppend): the leader said no
    accepted: int = 0                  # acknowledged with one in-sync replica: must stay 0
    other_errors: int = 0              # timeouts and the like (the brokers being fenced)
    errors: dict = field(default_factory=dict)   # error name -> count
    first_refusal_s: float = 0.0       # second kill -> the first refusal
    under_min_isr: float = 0.0         # the pipeline view's "below min ISR" meanwhile


def refused_writes(topic: str, broker: str = "kafka-3", per_partition: int = 5, cfg: LabConfig | None = None,
                   progress=print) -> Refusals:
    """Kill ``broker`` too, then send ``per_partition`` acks=all records to each partition
    of ``topic`` with no retries, and count what comes back. ``topic`` must be replicated
    three times with ``min.insync.replicas=2`` (create it while every broker runs)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, NotEnoughReplicasAfterAppendError, NotEnoughReplicasError

    from labsupport import stack

    cfg = cfg or get_config()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the dead brokers' reconnect noise
    brokers = [services.service(n.name, cfg) for n in kafka_nodes(cfg) if n.is_broker]
    live = [b for b in brokers if b.running()]
    killed = [b.name for b in brokers if b not in live]
    # The producer is an application that was running before the crash: it bootstraps from
    # the brokers alive now and knows the topic's partitions before the second kill.
    # Made after the kill, with the dead brokers in its bootstrap list, it once found no
    # broker to bootstrap from in 30 s (in CI, not reproduced alone). A send that fails
    # after the kill is only a write not yet refused: the wait below tries again.
    producer = KafkaProducer(bootstrap_servers=[b.address for b in live], acks="all", retries=0,
                             enable_idempotence=False, request_timeout_ms=5000, max_block_ms=10_000,
                             client_id="lab-lesson09-refused")
    partitions = sorted(producer.partitions_for(topic))
    stack.kill(broker, cfg=cfg, progress=progress)
    out = Refusals(killed + [broker])

    def send(partition: int) -> KafkaError | None:
        try:
            producer.send(topic, value=b"below min.insync.replicas", partition=partition).get(timeout=15)
        except KafkaError as exc:
            return exc
        return None

    def first_refusal():
        # until the controller fences the dead broker (broker.session.timeout.ms) a write
        # waits for its replica and times out; then the leader refuses at once
        return isinstance(send(0), (NotEnoughReplicasError, NotEnoughReplicasAfterAppendError))

    try:
        t0 = time.monotonic()
        wait_for(first_refusal, 90, "an acks=all write refused below min.insync.replicas", interval=1)
        out.first_refusal_s = time.monotonic() - t0
        for p in partitions:
            for _ in range(per_partition):
                error = send(p)
                out.attempts += 1
                if error is None:
                    out.accepted += 1
                    continue
                kind = type(error).__name__
                out.errors[kind] = out.errors.get(kind, 0) + 1
                if isinstance(error, (NotEnoughReplicasError, NotEnoughReplicasAfterAppendError)):
                    out.refused += 1
                else:
                    out.other_errors += 1
        # the leader refuses as soon as the ISR shrinks; Prometheus sees the gauge at its next
        # scrape of the survivor, so keep the view's last reading once it has (or after 30 s)
        def below_min_isr() -> bool:
            out.under_min_isr = pipeline_stats.collect(cfg=cfg).under_min_isr
            return out.under_min_isr > 0

        wait_quietly(below_min_isr, 30)
    finally:
        producer.close()
    progress(f"{out.attempts} acks=all writes with {', '.join(out.killed)} down: {out.refused} refused, "
             f"{out.accepted} accepted, {out.other_errors} other errors")
    return out


def brokers_back(cfg: LabConfig | None = None, timeout: float = 180, progress=print) -> float:
    """Start every stopped broker; wait until all report 0 under-replicated partitions.
    Returns the seconds from the restart to that."""
    from labsupport import stack

    cfg = cfg or get_config()
    t0 = time.monotonic()
    stack.up(["kafka"], cfg=cfg, progress=progress)
    wait_for(lambda: healthy(cfg), timeout, "0 under-replicated partitions, reported by every broker", interval=2)
    return time.monotonic() - t0


def wait_quietly(condition: Callable[[], object], timeout: float) -> bool:
    """``condition`` held within ``timeout`` (no error if not: for a number a lesson prints)."""
    try:
        return bool(wait_for(condition, timeout, "", interval=1))
    except TimedOut:
        return False


# ---- capacity by measurement ------------------------------------------------------------------
def us_per_event(rung: dict, exclude: tuple[str, ...] = ()) -> float:
    """CPU µs per event of one rung of `lab bench stream`, summed over every process it
    accounted (its ``ms_per_1k_events`` *is* µs per event), except the labels in ``exclude``."""
    per = rung["cpu"]["ms_per_1k_events"]
    return float(sum(v for k, v in per.items() if v is not None and k not in exclude))


def predicted_capacity(cores: float, us_per_event: float) -> float:
    """Events per second the machine could carry if every core did nothing but this:
    ``cores × 1e6 / µs per event``."""
    if us_per_event <= 0:
        raise ValueError(f"µs per event must be positive, got {us_per_event}")
    return cores * 1e6 / us_per_event


def measured_capacity(result: dict) -> tuple[float, bool]:
    """(rows/s the ladder's top rung committed, whether that is the capacity): a rung the
    stream did not sustain ran its batches back to back, so its commit rate is what the
    stream can do; a sustained top rung is only a lower bound."""
    top = max(result["rungs"], key=lambda r: r["target_rate"])
    return float(top["throughput"]), not top["sustained"]
