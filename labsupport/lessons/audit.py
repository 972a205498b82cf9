"""The exactly-once audit: what was produced for a time range against what Cassandra holds.

Events are a pure function of time (labsupport.events), so the audit recomputes the ids
produced for ``[since, until)``; with ``published_to=<topic>`` it takes the ids actually
published to that topic instead (and then also knows which the source published twice).
Reading (Cassandra, Kafka) and arithmetic are apart: ``tally`` is a pure function of the
rows read, which the unit tests call on made-up row sets.

Each count is kept per event-time minute, and the totals are sums of the minutes — an
over-count in one minute never cancels an under-count in another:

* ``missing``         produced, but no row (lost: e.g. a wiped checkpoint restarted at latest)
* ``published_twice`` ids the *source* put in the topic more than once (an Airflow retry
                      after a partial publish, a backfill over an ingested window). The
                      stream counts them once (labsupport.stream.dedupe), so they are not
                      ``duplicated``. ``None`` when no topic was read: unknown, not zero.
* ``duplicated``      the sink's own double counting: the per-minute aggregate above the
                      distinct ids stored for that minute (a batch counted twice: e.g. a
                      wiped checkpoint re-read from earliest)
* ``under_counted``   the aggregate below the distinct ids of a minute (a batch not counted)
* ``stored_twice``    one event id stored under two keys (two buckets, shards or event
                      times): found by grouping the rows read by event id
* ``quarantined``     records the stream refused, received in the range
* ``dead_lettered``   produced, but set aside by the ingestion DAG because Kafka cannot take
                      them (an event over its record limit): found in ``<topic>.dead-letter``
                      with the reason, so accounted for, not ``missing``

The same audit holds a rollup (lesson 11's per-source, per-minute table) to the events of
its topic: ``tally_rollup`` per (source, minute), ``rollup_audit`` reading both.

Which partitions to read comes from what the writer recorded (``stream_layout``), not
from this process's settings; every recorded layout is read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from labsupport.config import LabConfig, get_config
from labsupport.events import Profile, events_between
from labsupport.lessons.rollup import Rollup, combine, of_events
from labsupport.stats import percentile
from labsupport.times import epoch_ms, iso_ms, utc
from labsupport.stream import layout as stream_layout
from labsupport.stream.keys import buckets_between, days_between
from labsupport.stream.settings import StreamSettings

MINUTE_MS = 60_000

#: the counts kept per minute and summed into the report (``published_twice`` may be None)
COUNTS = ("produced", "landed", "missing", "dead_lettered", "published_twice", "aggregate", "distinct_rows",
          "duplicated", "under_counted", "stored_twice", "quarantined", "unexpected")


@dataclass(frozen=True)
class StoredRow:
    """One row of events_by_bucket as the audit reads it."""
    event_id: str
    event_ms: int
    bucket: str
    shard: int
    latency_ms: float | None = None   # written_at - event_time

    @property
    def key(self) -> tuple:
        return self.bucket, self.shard, self.event_ms, self.event_id


@dataclass
class AuditReport:
    since: str
    until: str
    produced: int
    landed: int
    missing: int
    duplicated: int
    quarantined: int
    published_twice: int | None = None  # None: no topic was read, so unknown
    dead_lettered: int = 0     # set aside at ingestion (over Kafka's record limit), with the reason
    under_counted: int = 0
    stored_twice: int = 0
    unexpected: int = 0        # rows in the range that were not produced
    aggregate: int = 0         # events counted by events_per_minute (minute-aligned window)
    distinct_rows: int = 0     # distinct ids stored in that same minute-aligned window
    layouts: list = field(default_factory=list)    # the (bucket width, shards) read, e.g. "hour x 4"
    notes: list = field(default_factory=list)      # what the audit could not know, said plainly
    minutes: list = field(default_factory=list)    # one dict per event-time minute, the same counts
    latency_ms: dict = field(default_factory=dict)  # event_time -> written_at of landed rows

    @property
    def clean(self) -> bool:
        return not any((self.missing, self.published_twice, self.duplicated, self.under_counted, self.stored_twice,
                        self.quarantined, self.dead_lettered))

    def as_dict(self) -> dict:
        return {**asdict(self), "clean": self.clean}

    @property
    def window(self) -> str:
        """The audited range in a few characters: ``07:00:00–07:05:00`` (UTC)."""
        same_day = self.since[:10] == self.until[:10]
        return f"{self.since[11:19]}–{self.until[11 if same_day else 0:19]} UTC"

    def _repr_html_(self) -> str:
        """A cell ending in ``report`` shows one compact row (labsupport.lessons.results)."""
        from labsupport.lessons.results import results_table

        return results_table({self.window: self}).to_html()

    def __str__(self) -> str:
        """``print(report)``: the same compact row, on one line."""
        from labsupport.lessons.results import summary_line

        return summary_line(self.window, self)


def _minute(ms: int) -> int:
    return ms - ms % MINUTE_MS


def tally(since_ms: int, until_ms: int, produced: Mapping[str, int], rows: Iterable[StoredRow],
          aggregate: Mapping[int, int], quarantined: Mapping[int, int] | None = None,
          published: Mapping[str, int] | None = None, layouts: Iterable[str] = (),
          notes: Iterable[str] = (), dead_lettered: Iterable[str] = ()) -> AuditReport:
    """The audit's arithmetic, with no I/O.

    ``produced`` {event id: event ms} of what should have landed in [since, until);
    ``rows`` the events_by_bucket rows of the minute-aligned window around it;
    ``aggregate`` {minute ms: events} summed from events_per_minute;
    ``quarantined`` {minute ms: records} received in [since, until);
    ``published`` {event id: copies in the topic} or None when no topic was read;
    ``dead_lettered`` the ids the ingestion set aside (not landed, and not missing)."""
    lo, hi = _minute(since_ms), _minute(until_ms - 1) + MINUTE_MS if until_ms > since_ms else _minute(since_ms)
    per = {m: dict.fromkeys(COUNTS, 0) for m in range(lo, hi, MINUTE_MS)}

    def bump(ms: int, what: str, n: int = 1) -> None:
        per.setdefault(_minute(ms), dict.fromkeys(COUNTS, 0))[what] += n

    keys_of: dict[str, set] = defaultdict(set)
    set_aside = set(dead_lettered)
    ids_of_minute: dict[int, set] = defaultdict(set)
    in_range: dict[str, float | None] = {}
    for r in rows:
        keys_of[r.event_id].add(r.key)
        ids_of_minute[_minute(r.event_ms)].add(r.event_id)
        if since_ms <= r.event_ms < until_ms:
            in_range[r.event_id] = r.latency_ms
    for m, ids in ids_of_minute.items():
        bump(m, "distinct_rows", len(ids))
    for m, n in aggregate.items():
        bump(m, "aggregate", n)
    for event_id, keys in keys_of.items():
        if len(keys) > 1:  # counted once, in the minute of its earliest key
            bump(min(k[2] for k in keys), "stored_twice")
    for event_id, ms in produced.items():
        bump(ms, "produced")
        bump(ms, "landed" if event_id in keys_of else "dead_lettered" if event_id in set_aside else "missing")
        if published is not None and published.get(event_id, 0) > 1:
            bump(ms, "published_twice")
    for event_id, _ in in_range.items():
        if event_id not in produced:
            bump(min(k[2] for k in keys_of[event_id]), "unexpected")
    for m, n in (quarantined or {}).items():
        bump(m, "quarantined", n)
    for c in per.values():  # per minute: an excess here never cancels a shortfall there
        c["duplicated"] = max(c["aggregate"] - c["distinct_rows"], 0)
        c["under_counted"] = max(c["distinct_rows"] - c["aggregate"], 0)
        if published is None:
            c["published_twice"] = None
    minutes = [{"minute": iso_ms(m), **c} for m, c in sorted(per.items())]
    total = {k: (None if published is None and k == "published_twice" else sum(c[k] for c in per.values()))
             for k in COUNTS}
    lat = sorted(v for k, v in in_range.items() if k in produced and v is not None)
    notes = list(notes)
    if published is None:
        notes.append("published_twice unknown: no topic was read (audit with published_to=TOPIC, "
                     "or --published-to TOPIC)")
    return AuditReport(since=iso_ms(since_ms), until=iso_ms(until_ms), **total, layouts=list(layouts), notes=notes,
                       minutes=minutes,
                       latency_ms={"p50": round(percentile(lat, 50), 1), "p99": round(percentile(lat, 99), 1)}
                       if lat else {})


# ---- reading Cassandra and Kafka ---------------------------------------------------------
def rows_between(session, keyspace: str, since: datetime, until: datetime,
                 layouts: Iterable[stream_layout.Layout]) -> list[StoredRow]:
    """The events_by_bucket rows with since <= event_time < until, in every layout's partitions."""
    stmt = session.prepare(f"SELECT event_id, event_time, written_at, bucket, shard FROM {keyspace}.events_by_bucket "
                           "WHERE bucket = ? AND shard = ? AND event_time >= ? AND event_time < ?")
    out = []
    for lay in layouts:
        for bucket in buckets_between(since, until, lay.bucket_width):
            for shard in range(lay.shards):
                for row in session.execute(stmt, (bucket, shard, since, until)):
                    lat = (row.written_at - row.event_time).total_seconds() * 1000 if row.written_at else None
                    out.append(StoredRow(row.event_id, epoch_ms(row.event_time), row.bucket, row.shard, lat))
    return out


def aggregate_between(session, keyspace: str, since: datetime, until: datetime) -> dict[int, int]:
    """{minute ms: events counted by the sink} from events_per_minute."""
    stmt = session.prepare(f"SELECT minute, events FROM {keyspace}.events_per_minute "
                           "WHERE day = ? AND minute >= ? AND minute < ?")
    out: dict[int, int] = defaultdict(int)
    for d in days_between(since, until):
        for r in session.execute(stmt, (d, since, until)):
            out[epoch_ms(r.minute)] += r.events
    return dict(out)


def quarantined_between(session, keyspace: str, since: datetime, until: datetime,
                        topic: str | None = None) -> dict[int, int]:
    """{minute ms of receipt: records quarantined}, optionally of one topic only."""
    stmt = session.prepare(f"SELECT topic, received_at FROM {keyspace}.quarantine WHERE day = ? AND received_at >= ? "
                           "AND received_at < ?")
    out: dict[int, int] = defaultdict(int)
    for d in days_between(since, until):
        for r in session.execute(stmt, (d, since, until)):
            if topic is None or r.topic == topic:
                out[_minute(epoch_ms(r.received_at))] += 1
    return dict(out)


def published_between(topic: str, since: datetime, until: datetime,
                      cfg: LabConfig | None = None) -> dict[str, list[int]]:
    """{event id: [event ms of each copy]} of the events in ``topic`` (read from offset 0)
    whose event time is in [since, until). Records that do not parse as an event are
    skipped: they are the quarantine's business."""
    import json

    from labsupport.ingest import topics

    lo, hi = epoch_ms(since), epoch_ms(until)
    copies: dict[str, list[int]] = defaultdict(list)
    for rec in topics.replay(topic, cfg=cfg, decode=False):
        try:
            ev = json.loads(rec.value)
            at = epoch_ms(ev["event_time"])
            event_id = ev["event_id"]
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
        if lo <= at < hi and isinstance(event_id, str):
            copies[event_id].append(at)
    return dict(copies)


def dead_lettered_between(topic: str, since: datetime, until: datetime, cfg: LabConfig | None = None) -> set[str] | None:
    """The ids of events of [since, until) the ingestion set aside from ``topic`` (its
    dead-letter topic, which exists only once something was set aside); None when Kafka
    does not answer (an audit of Cassandra still means something without it)."""
    import json

    from kafka.errors import KafkaError

    from labsupport.ingest import topics

    lo, hi = epoch_ms(since), epoch_ms(until)
    found = set()
    try:
        for rec in topics.replay(topics.dead_letter_topic(topic), cfg=cfg, decode=False):
            try:
                letter = json.loads(rec.value)
                if lo <= epoch_ms(letter["event_time"]) < hi:
                    found.add(letter["event_id"])
            except (TypeError, ValueError, KeyError):
                continue
    except topics.TopicProblem as exc:
        if "does not exist" not in str(exc):
            raise
    except KafkaError:
        return None
    return found


def layouts_of(session, keyspace: str, settings: StreamSettings) -> tuple[list[stream_layout.Layout], list[str]]:
    """The layouts the writer recorded; this environment's settings (with a note) if none."""
    found = stream_layout.recorded(session, keyspace)
    if found:
        return found, []
    return [stream_layout.Layout(settings.bucket_width, settings.shards)], [
        f"no writer recorded its layout in {keyspace}.stream_layout: read with this environment's "
        f"bucket width {settings.bucket_width!r} and {settings.shards} shards"]


def audit_fed_stream(feeder, svc, profile: Profile, cfg: LabConfig, timeout: float = 180) -> "AuditReport":
    """Stop ``feeder`` (a `Feeder` publishing ``profile``), wait until the sandboxed stream
    ``svc`` has consumed everything it published, and audit those events in the stream's
    keyspace: how every lesson that feeds a stream of its own ends its run."""
    from labsupport.ingest import topics

    since, until = feeder.stop()
    s = svc.settings
    topics.wait_caught_up(s.topic, s.group_id, timeout=timeout, cfg=cfg)
    return audit(since, until, profile, keyspace=s.keyspace, settings=s, topic=s.topic, cfg=cfg)


def every_replica_session(cfg: LabConfig):
    """(cluster, session) reading at ``ALL``: every replica answers and the coordinator
    merges their rows (and writes the merge back to any replica that lacked one).

    ``LOCAL_QUORUM`` writes + ``LOCAL_QUORUM`` reads overlap only while each replica keeps
    what it acknowledged. A ring that just recovered breaks that: a node killed with
    ``kill -9`` loses the writes it acknowledged since its last commit-log sync
    (``commitlog_sync: periodic``, 10 s), and the hints it held as coordinator for a node
    already down die with it. Lesson 10's rehearsal measured it: the stream's batch 1 (550
    events) was acknowledged at ``LOCAL_QUORUM`` by cassandra-1 and cassandra-2 (cassandra-3
    down) a moment before cassandra-2 was killed. With all three back and no hint left
    anywhere, its ``events_per_minute`` row was on cassandra-1 only (its
    ``committed_batches`` row on cassandra-1 and cassandra-3, whose hint came from
    cassandra-1), and the audit at ``LOCAL_QUORUM`` reported 550 under-counted though the
    sink had written and counted every batch once. Only a read of every replica (or
    ``nodetool repair``) finds such a row, so the audit reads at ``ALL`` (on one node the
    same as ``ONE``); with a replica down it fails (``Unavailable``) rather than report a
    partial truth."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile

    from labsupport import schema

    profile = ExecutionProfile(consistency_level=ConsistencyLevel.ALL, request_timeout=30)
    return schema.connect(cfg, execution_profiles={EXEC_PROFILE_DEFAULT: profile})


def audit(since: datetime | float, until: datetime | float, profile: Profile = Profile(), keyspace: str = "streamlab",
          settings: StreamSettings | None = None, topic: str | None = None, published_to: str | None = None,
          cfg: LabConfig | None = None, session=None) -> AuditReport:
    """Compare the events ``profile`` produced in [since, until) — or, with
    ``published_to``, the events found in that topic — with Cassandra. ``topic`` limits
    the quarantine count to one topic's records. ``settings`` only matter when no
    writer recorded its layout in the keyspace."""
    from labsupport import schema

    cfg = cfg or get_config()
    settings = settings or StreamSettings.from_env(keyspace=keyspace)
    since, until = utc(since), utc(until)
    own = session is None
    cluster = None
    if own:
        cluster, session = every_replica_session(cfg)
    try:
        schema.ensure(cfg, keyspace, session=session)  # an audit before the first run reports zeros
        copies = published_between(published_to, since, until, cfg) if published_to else None
        produced = ({i: min(ms) for i, ms in copies.items()} if copies is not None
                    else {e["event_id"]: epoch_ms(e["event_time"]) for e in events_between(since, until, profile)})
        layouts, notes = layouts_of(session, keyspace, settings)
        source = published_to or topic or settings.topic
        set_aside = dead_lettered_between(source, since, until, cfg)
        if set_aside is None:
            notes.append(f"dead letters unknown: Kafka did not answer (events of {source!r} set aside at "
                         "ingestion count as missing)")
        # the aggregate is per minute: compare it with the distinct rows of the same whole minutes
        m_since = since.replace(second=0, microsecond=0)
        m_until = until.replace(second=0, microsecond=0)
        m_until += timedelta(minutes=1) if m_until != until else timedelta()
        return tally(epoch_ms(since), epoch_ms(until), produced,
                     rows_between(session, keyspace, m_since, m_until, layouts),
                     aggregate_between(session, keyspace, m_since, m_until),
                     quarantined_between(session, keyspace, since, until, topic),
                     published=None if copies is None else {i: len(ms) for i, ms in copies.items()},
                     layouts=[f"{lay.bucket_width} x {lay.shards}" for lay in layouts], notes=notes,
                     dead_lettered=set_aside or ())
    finally:
        if own and cluster is not None:
            cluster.shutdown()


def topic_windows(topic: str, since: float, until: float, profile=None, step: int = 60,
                  cfg: LabConfig | None = None) -> list[dict]:
    """Audit a topic per ``step``-second window of ``[since, until)`` against the events
    the API serves (``labsupport.events``): one row per window with the expected count,
    the records found, distinct ids, missing and duplicated ids, and ``exactly_once``
    (every expected id present once, nothing else, every record equal to the API's)."""
    from collections import Counter, defaultdict

    from labsupport import events
    from labsupport.ingest import topics
    from labsupport.times import epoch, to_iso

    profile = profile or events.Profile()
    found: dict[float, list[dict]] = defaultdict(list)
    for ev in topics.replay(topic, cfg=cfg):
        t = epoch(ev["event_time"])
        if since <= t < until:
            found[since + (t - since) // step * step].append(ev)
    rows = []
    set_aside = dead_lettered_between(topic, utc(since), utc(until), cfg) or set()
    for start in range(int(since), int(until), step):
        truth = {e["event_id"]: e for e in events.events_between(start, start + step, profile)}
        aside = set(truth) & set_aside
        wanted = {i: e for i, e in truth.items() if i not in aside}
        got = found.get(float(start), [])
        ids = Counter(e["event_id"] for e in got)
        rows.append({"window": f"{to_iso(start)[11:16]}–{to_iso(start + step)[11:16]}", "expected": len(truth),
                     "records": len(got), "distinct": len(ids), "missing": len(set(wanted) - set(ids)),
                     "dead_lettered": len(aside), "duplicated": sum(n - 1 for n in ids.values() if n > 1),
                     "exactly_once": bool(truth) and len(got) == len(wanted) and set(ids) == set(wanted)
                     and all(e == wanted[e["event_id"]] for e in got)})
    return rows


# ---- a rollup against its events (lesson 11) ------------------------------------------------
@dataclass
class RollupReport:
    """One rollup table against the events of its topic, per (source, minute); every count
    is kept per source-minute, so an excess in one never cancels a shortfall in another.

    ``missing`` events of the topic no row counts; ``counted_twice`` events counted beyond
    the topic's (a replayed batch added, not overwritten); ``wrong_values`` source-minutes
    whose count agrees but min, max or sum do not; ``unexpected`` source-minutes stored
    that the topic never had."""
    source_minutes: int
    events: int
    counted: int
    missing: int
    counted_twice: int
    wrong_values: int
    unexpected: int
    rows: int  #: stored rows read (one per source, minute and batch)

    @property
    def clean(self) -> bool:
        return not any((self.missing, self.counted_twice, self.wrong_values, self.unexpected))

    def as_dict(self) -> dict:
        return {**asdict(self), "clean": self.clean}

    def __str__(self) -> str:
        return (f"{self.source_minutes:,} source-minutes, {self.events:,} events in the topic, {self.counted:,} "
                f"counted by {self.rows:,} rows: {self.missing} missing, {self.counted_twice} counted twice, "
                f"{self.wrong_values} with wrong min/max/sum, {self.unexpected} unexpected")


def tally_rollup(truth: Mapping[tuple[str, int], Rollup],
                 rows: Iterable[tuple[str, int, Rollup]]) -> RollupReport:
    """The rollup audit's arithmetic, with no I/O: ``truth`` {(source, minute ms): rollup}
    of the topic's events, ``rows`` the stored (source, minute ms, rollup) rows, summed on
    read per source-minute (``labsupport.lessons.rollup.combine``)."""
    rows = list(rows)
    stored = combine(rows)
    missing = twice = wrong = 0
    for key, want in truth.items():
        got = stored.get(key, Rollup())
        missing += max(want.events - got.events, 0)
        twice += max(got.events - want.events, 0)
        wrong += got.events == want.events and not got.same_values(want)
    extra = [key for key in stored if key not in truth]
    return RollupReport(source_minutes=len(truth), events=sum(r.events for r in truth.values()),
                        counted=sum(r.events for r in stored.values()), missing=missing,
                        counted_twice=twice + sum(stored[k].events for k in extra), wrong_values=wrong,
                        unexpected=len(extra), rows=len(rows))


def topic_rollup(topic: str, cfg: LabConfig | None = None) -> dict[tuple[str, int], Rollup]:
    """{(source, minute ms): rollup} of every event in ``topic`` (read from offset 0), each
    event id once; records that are no event are skipped, as the rollup's query skips them."""
    import json

    from labsupport.ingest import topics

    seen: dict[str, tuple[str, int, float | None]] = {}
    for rec in topics.replay(topic, cfg=cfg, decode=False):
        try:
            ev = json.loads(rec.value)
            seen.setdefault(ev["event_id"], (ev["source_id"], epoch_ms(ev["event_time"]), ev.get("value")))
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
    return of_events(seen.values())


def stored_rollup(session, keyspace: str, table: str, checkpoint_id: str | None = None) -> list[tuple[str, int, Rollup]]:
    """The rollup rows of ``keyspace.table`` (of one checkpoint's query when given) as
    (source, minute ms, rollup): the whole table, whichever key it has (a lesson's own,
    small table: a full read is what an audit of it may do)."""
    stmt = (f"SELECT source_id, minute, checkpoint_id, events, value_min, value_max, value_sum "
            f"FROM {keyspace}.{table}")
    return [(r.source_id, epoch_ms(r.minute), Rollup(r.events, r.value_min, r.value_max, r.value_sum or 0.0))
            for r in session.execute(stmt) if checkpoint_id is None or r.checkpoint_id == checkpoint_id]


def rollup_audit(topic: str, keyspace: str, table: str, checkpoint_id: str | None = None,
                 cfg: LabConfig | None = None, session=None) -> RollupReport:
    """Every source-minute of ``table`` against the events of ``topic``."""
    from labsupport import schema

    cfg = cfg or get_config()
    cluster = None
    if session is None:
        cluster, session = schema.connect(cfg)
    try:
        return tally_rollup(topic_rollup(topic, cfg), stored_rollup(session, keyspace, table, checkpoint_id))
    finally:
        if cluster is not None:
            cluster.shutdown()
