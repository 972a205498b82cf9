"""Lesson 06's producer ladder: the same events sent by ever better producers, each rung
on a topic of its own, measured under a time budget and audited from the topic itself.

A rung is any ``send(events, topic)`` that returns once Kafka acknowledged the events it
was given (``producers.publish``, the lesson's thread pool, ``librdkafka_sender``).
``measure`` feeds it the sample in chunks sized from the rate seen so far, so a rung that
manages 75 events/s sends a few hundred of them in its budget while a fast rung sends the
whole sample: every rung costs about the same wall-clock time. The top rung is Kafka's
own Java ``ProducerPerformance`` (``java_ceiling``), run from the lab's jars.

Every rung writes to a fresh topic (``topic_for``), so ``audit`` can replay it and say
whether each id the rung sent is there exactly once — whatever the speed, and however
often the lesson is run.
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError, MissingTool
from labsupport.ingest import producers

Send = Callable[[Sequence[dict], str], object]

LESSON = "lesson06"
#: what the seed's fixed stress producer reached ("large batches, low linger, and a thread
#: pool of senders — which is how the pipeline reached ~2.8k msg/sec")
SEED_FIXED_RATE = 2_800
TOOLS_COMPONENT = "kafka-tools"
PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
JAVA_RUNG = "Java ProducerPerformance"


def predicted_cap(linger_ms: float, in_flight: int = 1) -> float:
    """Records/s when each of ``in_flight`` senders waits for its record's ack before the
    next, and each record (alone in its batch) waits out ``linger_ms`` before it is sent:
    ``in_flight × 1000 / linger_ms``. An upper bound: the round trip comes on top."""
    return in_flight * 1000.0 / linger_ms


def topic_for(rung: str, run: int) -> str:
    """``lesson06-<rung>-<run>``: one topic per rung and per run of the lesson, so a second
    run never finds its own earlier records (``run``: e.g. the epoch second it started)."""
    slug = re.sub(r"[^a-z0-9]+", "-", rung.lower()).strip("-")
    return f"{LESSON}-{slug}-{run}"


@dataclass(frozen=True)
class Rung:
    name: str
    topic: str
    sent: int
    seconds: float
    #: the event ids sent, in order — None when the tool makes up its own records
    ids: tuple[str, ...] | None

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else float("inf")


def measure(name: str, send: Send, events: Sequence[dict], topic: str, budget_s: float,
            first: int = 10, clock: Callable[[], float] = time.monotonic) -> Rung:
    """Send ``events`` through ``send`` until all are acknowledged or ``budget_s`` is spent.

    Chunks start at ``first`` events; each next chunk is what the rate so far fits into the
    remaining budget, at most four times what was sent so far (a slow start must not make
    one huge chunk overrun the budget). The clock runs only around ``send``: creating the
    producer is the caller's business."""
    started = clock()
    sent, chunk = 0, min(first, len(events))
    while chunk > 0:
        send(events[sent:sent + chunk], topic)
        sent += chunk
        elapsed = clock() - started
        left = budget_s - elapsed
        if left <= 0:
            break
        fits = int(sent / elapsed * left) if elapsed > 0 else len(events)
        chunk = min(len(events) - sent, fits, max(first, 4 * sent))
    return Rung(name, topic, sent, clock() - started, tuple(e["event_id"] for e in events[:sent]))


# ---- the librdkafka rung ------------------------------------------------------------------------
def librdkafka_sender(cfg: LabConfig | None = None, **conf) -> Send:
    """A ``send(events, topic)`` on confluent-kafka's Producer (librdkafka, C): the same
    settings as the lab's kafka-python producer (acks=all, idempotence, 10 ms linger),
    the same keys and JSON. ``produce()`` only queues; one ``flush()`` per call waits."""
    from confluent_kafka import Producer

    cfg = cfg or get_config()
    producer = Producer({"bootstrap.servers": cfg.bootstrap_servers, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 10, "batch.size": 256 * 1024, "queue.buffering.max.messages": 1_000_000,
                         "client.id": f"streamlab-{LESSON}", **conf})

    def send(events: Sequence[dict], topic: str) -> int:
        failed: list[str] = []

        def delivered(err, _msg):
            if err is not None:
                failed.append(str(err))

        for ev in events:
            while True:
                try:
                    producer.produce(topic, key=producers.key_of(ev), value=producers.encode(ev), on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let librdkafka send some
                    producer.poll(0.05)
        left = producer.flush(60)
        if left or failed:
            raise producers.PublishFailed(f"{left} records undelivered and {len(failed)} failed "
                                          f"(first: {failed[:1]})", "check `lab status` for kafka and run the rung again")
        return len(events)

    return send


# ---- the Java ceiling ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PerfSummary:
    records: int
    per_second: float
    avg_latency_ms: float


_SUMMARY = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \([\d.]+ MB/sec\), ([\d.]+) ms avg latency",
                      re.M)


def parse_summary(stdout: str) -> PerfSummary:
    """The final line of ProducerPerformance's output (it also prints one line per
    5 s window, in the same format: the last match is the whole run)."""
    found = _SUMMARY.findall(stdout)
    if not found:
        raise LabError("ProducerPerformance printed no summary line", "read its output above")
    records, rate, latency = found[-1]
    return PerfSummary(int(records), float(rate), float(latency))


def tools_classpath(cfg: LabConfig | None = None) -> str:
    """The classpath of Kafka's tools (``stack/maven/kafka-tools``), or MissingTool."""
    cfg = cfg or get_config()
    jars = cfg.paths.jars(TOOLS_COMPONENT)
    if not any(jars.glob("kafka-tools-*.jar")):
        raise MissingTool(f"Kafka's tools jars are not in {jars}", "run `./lab setup` (it fetches org.apache.kafka:kafka-tools)")
    return f"{jars}/*"


def java_ceiling(topic: str, records: int, record_size: int, cfg: LabConfig | None = None,
                 timeout: float = 300) -> Rung:
    """Kafka's own producer benchmark: ``records`` records of ``record_size`` random bytes,
    as fast as they go (``--throughput -1``), with the lab producer's settings. Its records
    are made up by the tool, so the rung has no ids: the audit counts them."""
    from labsupport.java import java_bin

    cfg = cfg or get_config()
    cmd = [java_bin(cfg.java_home), "-Xmx256m", "-cp", tools_classpath(cfg), PRODUCER_PERFORMANCE,
           "--topic", topic, "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={cfg.bootstrap_servers}", "acks=all", "enable.idempotence=true",
           "linger.ms=10", f"batch.size={256 * 1024}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise LabError(f"ProducerPerformance exited {done.returncode}: {tail[0][:200]}",
                       "check `lab status` for kafka; the topic must exist (auto-creation is off)")
    summary = parse_summary(done.stdout)
    return Rung(JAVA_RUNG, topic, summary.records, summary.records / summary.per_second, None)


# ---- the audit ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TopicAudit:
    topic: str
    expected: int
    records: int
    missing: int
    duplicated: int  # records beyond the first copy of an id
    unexpected: int  # records with an id the rung never sent

    @property
    def clean(self) -> bool:
        return self.records == self.expected and not (self.missing or self.duplicated or self.unexpected)


def tally(topic: str, sent_ids: Iterable[str], found_ids: Iterable[str]) -> TopicAudit:
    """Compare the ids a rung sent with the ids its topic holds."""
    want, found = set(sent_ids), Counter(found_ids)
    return TopicAudit(topic, expected=len(want), records=sum(found.values()),
                      missing=sum(1 for i in want if i not in found),
                      duplicated=sum(n - 1 for i, n in found.items() if i in want),
                      unexpected=sum(n for i, n in found.items() if i not in want))


def records_in(topic: str, cfg: LabConfig | None = None) -> int:
    """How many records a fresh topic holds: the sum of its log-end offsets (no record was
    deleted or compacted, and a producer without transactions writes no control records)."""
    import logging

    from kafka import KafkaConsumer, TopicPartition

    cfg = cfg or get_config()
    logging.getLogger("kafka").setLevel(logging.ERROR)
    consumer = KafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id=f"streamlab-{LESSON}")
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def audit(rung: Rung, cfg: LabConfig | None = None, timeout: float = 300) -> TopicAudit:
    """Replay the rung's topic from offset 0 and tally its ids against the ones sent.

    The Java tool's records are random bytes, not events: reading 100,000s of them back in
    Python only to count them would take longer than the tool ran, so they are counted from
    the log-end offsets."""
    from labsupport.ingest import topics

    if rung.ids is None:
        records = records_in(rung.topic, cfg)
        return TopicAudit(rung.topic, rung.sent, records, missing=max(0, rung.sent - records),
                          duplicated=max(0, records - rung.sent), unexpected=0)
    found = (ev.get("event_id") for ev in topics.replay(rung.topic, cfg=cfg, timeout=timeout))
    return tally(rung.topic, rung.ids, found)


# ---- the whole ladder, as the lesson runs it -----------------------------------------------------
class Ladder:
    """The lesson's rungs on one sample of events: each on a fresh topic of this run, with
    the same time budget, printed as it finishes; then audited and drawn."""

    def __init__(self, events: Iterable[dict], budget_s: float, run: int | None = None,
                 cfg: LabConfig | None = None, out: Callable[[str], None] = print):
        self.events, self.budget_s = list(events), budget_s
        self.run = run if run is not None else int(time.time())
        self.cfg, self.out = cfg or get_config(), out
        self.rungs: dict[str, Rung] = {}

    def topic(self, name: str) -> str:
        from labsupport.ingest import topics

        name = topic_for(name, self.run)
        topics.ensure_topic(name, cfg=self.cfg)
        return name

    def rung(self, name: str, send: Send) -> Rung:
        return self._add(measure(name, send, self.events, self.topic(name), self.budget_s))

    def java(self, records: int) -> Rung:
        """The ceiling: Kafka's Java producer, records as large as the sample's on average."""
        size = round(sum(len(producers.encode(e)) for e in self.events[:1000]) / min(1000, len(self.events)))
        return self._add(java_ceiling(self.topic(JAVA_RUNG), records, size, cfg=self.cfg))

    def _add(self, rung: Rung) -> Rung:
        self.rungs[rung.name] = rung
        self.out(f"{rung.name:<28} {rung.sent:>9,} records in {rung.seconds:5.1f} s = {rung.per_second:>10,.0f}/s")
        return rung

    def audits(self) -> dict[str, TopicAudit]:
        return {name: audit(r, self.cfg) for name, r in self.rungs.items()}

    def table(self, baseline: str) -> list[dict]:
        """One row per rung: records, seconds, records/s and the multiple of ``baseline``."""
        times = ratios(list(self.rungs.values()), self.rungs[baseline])
        return [{"rung": r.name, "records": r.sent, "seconds": round(r.seconds, 2), "records/s": round(r.per_second),
                 f"× {baseline}": round(times[r.name], 1)} for r in self.rungs.values()]


# ---- the picture --------------------------------------------------------------------------------
def ratios(rungs: Sequence[Rung], baseline: Rung) -> dict[str, float]:
    """Each rung's rate as a multiple of ``baseline``'s."""
    return {r.name: r.per_second / baseline.per_second for r in rungs}


def figure(rungs: Sequence[Rung], seed_rate: float = SEED_FIXED_RATE):
    """The ladder as bars on a log axis (75/s and 300,000/s on one chart), the seed's
    fixed rate as a line across."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=[r.name for r in rungs], y=[r.per_second for r in rungs],
                           text=[f"{r.per_second:,.0f}/s" for r in rungs], textposition="outside"))
    fig.add_hline(y=seed_rate, line_dash="dash", line_color="firebrick")
    # on a log axis an annotation's y is log10 of the value (add_hline's own label lands off the chart)
    fig.add_annotation(x=0, xref="paper", y=math.log10(seed_rate), yref="y", showarrow=False, xanchor="left",
                       yanchor="bottom", font=dict(color="firebrick"), text=f"the seed's fix ≈ {seed_rate:,.0f} msg/s")
    fig.update_layout(title="The producer ladder: the same events, acknowledged per second", height=420,
                      yaxis=dict(type="log", title="records/s (log scale)"), margin=dict(l=60, r=20, t=50, b=90))
    return fig
