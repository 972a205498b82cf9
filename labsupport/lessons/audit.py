"""The exactly-once audit: what was produced for a time range against what Cassandra holds.

Events are a pure function of time (labsupport.events), so the audit recomputes the ids
produced for ``[since, until)`` and looks each up in ``events_by_bucket``. With
``published_to=<topic>`` it takes the ids actually published to that topic instead (for
events that did not come from the API's model, or to tell "never published" from "lost
by the stream"):

* ``missing``    produced, but no row (lost: e.g. a wiped checkpoint restarted at latest)
* ``duplicated`` the per-minute aggregate counts more events than there are distinct rows
                 (a batch counted twice: e.g. a wiped checkpoint re-read from earliest)
* ``quarantined`` records the stream refused, received in the range
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from labsupport.config import LabConfig, get_config
from labsupport.events import Profile, events_between
from labsupport.stats import percentile
from labsupport.times import epoch_ms, minute_floor, utc
from labsupport.stream.keys import buckets_between, days_between
from labsupport.stream.settings import StreamSettings


@dataclass
class AuditReport:
    since: str
    until: str
    produced: int
    landed: int
    missing: int
    duplicated: int
    quarantined: int
    unexpected: int = 0        # rows in the range that the profile did not produce
    aggregate: int = 0         # events counted by events_per_minute (minute-aligned window)
    distinct_rows: int = 0     # distinct rows in that same minute-aligned window
    under_counted: int = 0     # aggregate below the distinct rows (a batch not counted)
    latency_ms: dict = field(default_factory=dict)  # event_time -> written_at of landed rows

    @property
    def clean(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.under_counted == 0

    def as_dict(self) -> dict:
        return {**asdict(self), "clean": self.clean}


def rows_between(session, keyspace: str, since: datetime, until: datetime, width: str, shards: int) -> dict:
    """{event_id: latency ms} of the rows with since <= event_time < until."""
    stmt = session.prepare(f"SELECT event_id, event_time, written_at FROM {keyspace}.events_by_bucket "
                           "WHERE bucket = ? AND shard = ? AND event_time >= ? AND event_time < ?")
    out = {}
    for bucket in buckets_between(since, until, width):
        for shard in range(shards):
            for row in session.execute(stmt, (bucket, shard, since, until)):
                lat = (row.written_at - row.event_time).total_seconds() * 1000 if row.written_at else None
                out[row.event_id] = lat
    return out


def aggregate_between(session, keyspace: str, since: datetime, until: datetime) -> int:
    stmt = session.prepare(f"SELECT events FROM {keyspace}.events_per_minute "
                           "WHERE day = ? AND minute >= ? AND minute < ?")
    return sum(r.events for d in days_between(since, until) for r in session.execute(stmt, (d, since, until)))


def quarantined_between(session, keyspace: str, since: datetime, until: datetime, topic: str | None = None) -> int:
    stmt = session.prepare(f"SELECT topic FROM {keyspace}.quarantine WHERE day = ? AND received_at >= ? "
                           "AND received_at < ?")
    return sum(1 for d in days_between(since, until) for r in session.execute(stmt, (d, since, until))
               if topic is None or r.topic == topic)


def published_between(topic: str, since: datetime, until: datetime, cfg: LabConfig | None = None) -> set[str]:
    """Ids of the events in ``topic`` (read from offset 0) whose event time is in [since, until).
    Records that do not parse as an event are skipped: they are the quarantine's business."""
    import json

    from labsupport.ingest import topics

    lo, hi = epoch_ms(since), epoch_ms(until)
    ids = set()
    for rec in topics.replay(topic, cfg=cfg, decode=False):
        try:
            ev = json.loads(rec.value)
            at = epoch_ms(ev["event_time"])
            event_id = ev["event_id"]
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
        if lo <= at < hi and isinstance(event_id, str):
            ids.add(event_id)
    return ids


def audit(since: datetime | float, until: datetime | float, profile: Profile = Profile(), keyspace: str = "streamlab",
          settings: StreamSettings | None = None, topic: str | None = None, published_to: str | None = None,
          cfg: LabConfig | None = None, session=None) -> AuditReport:
    """Compare the events ``profile`` produced in [since, until) — or, with
    ``published_to``, the events found in that topic — with Cassandra. ``topic`` limits
    the quarantine count to one topic's records."""
    from labsupport import schema

    cfg = cfg or get_config()
    settings = settings or StreamSettings.from_env(keyspace=keyspace)
    since, until = utc(since), utc(until)
    own = session is None
    cluster = None
    if own:
        cluster, session = schema.connect(cfg)
    try:
        schema.ensure(cfg, keyspace, session=session)  # an audit before the first run reports zeros
        produced = (published_between(published_to, since, until, cfg) if published_to
                    else {e["event_id"] for e in events_between(since, until, profile)})
        rows = rows_between(session, keyspace, since, until, settings.bucket_width, settings.shards)
        # the aggregate is per minute: compare it with distinct rows of the same whole minutes
        m_since = minute_floor(since)
        m_until = minute_floor(until) + (timedelta(minutes=1) if until != minute_floor(until) else timedelta())
        window_rows = rows_between(session, keyspace, m_since, m_until, settings.bucket_width, settings.shards)
        agg = aggregate_between(session, keyspace, m_since, m_until)
        landed = produced & rows.keys()
        lat = sorted(v for k, v in rows.items() if k in landed and v is not None)
        return AuditReport(
            since=since.isoformat(), until=until.isoformat(),
            produced=len(produced), landed=len(landed), missing=len(produced - rows.keys()),
            duplicated=max(agg - len(window_rows), 0),
            quarantined=quarantined_between(session, keyspace, since, until, topic),
            unexpected=len(rows.keys() - produced), aggregate=agg, distinct_rows=len(window_rows),
            under_counted=max(len(window_rows) - agg, 0),
            latency_ms={"p50": round(percentile(lat, 50), 1), "p99": round(percentile(lat, 99), 1)}
            if lat else {})
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
    for start in range(int(since), int(until), step):
        truth = {e["event_id"]: e for e in events.events_between(start, start + step, profile)}
        got = found.get(float(start), [])
        ids = Counter(e["event_id"] for e in got)
        rows.append({"window": f"{to_iso(start)[11:16]}–{to_iso(start + step)[11:16]}", "expected": len(truth),
                     "records": len(got), "distinct": len(ids), "missing": len(set(truth) - set(ids)),
                     "duplicated": sum(n - 1 for n in ids.values() if n > 1),
                     "exactly_once": bool(truth) and len(got) == len(truth) and set(ids) == set(truth)
                     and all(e == truth[e["event_id"]] for e in got)})
    return rows
