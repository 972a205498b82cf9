"""
### ingest_events: the events API → Kafka, one data interval per run

Every run fetches exactly its data interval ``[data_interval_start, data_interval_end)``
from the events API (paginated), validates the **whole** window, and only then
publishes it to Kafka. A window that fails anywhere (HTTP error, timeout, malformed
JSON, wrong schema, incomplete count) fails the attempt *before* anything is produced,
so a retry starts clean; the API is deterministic (same window → same event ids), so a
retry or a backfill re-publishes identical records and duplicates are detectable by id.

**Schedule**: every minute (``LAB_INGEST_SCHEDULE``, any cron expression) from
``LAB_INGEST_START_DATE`` (the lab's first Airflow start), ``max_active_runs=4``.
``catchup`` is off by default (``LAB_INGEST_CATCHUP``): unpaused after hours or days, the
DAG resumes with the latest complete minute instead of one run per missed minute (a
2-core machine would spend the gap's length doing nothing else); a gap is filled only by
an explicit backfill (``lab pipeline on --backfill-from TIME``). Lessons and tests turn
catchup on with a ``start_date`` a few minutes back, so those minutes run at once.

**Manual runs** (``airflow dags trigger`` / the UI / REST without an interval) get an
*empty* data interval in Airflow 3. This DAG then fetches **the last full minute before
the run's logical date** (or before ``run_after`` when there is no logical date):
``[floor_minute(t) - 1 min, floor_minute(t))`` — a complete, already-elapsed window, the
same one a scheduled run would own. To ingest another window, trigger the run with an
explicit ``data_interval_start``/``data_interval_end`` (REST API) or use a backfill.

**Per-run conf** (manual runs and backfills): ``topic`` overrides the target topic,
``page_size`` the API page size. Scheduled runs always write ``LAB_INGEST_TOPIC``.

**Publishing** (kafka-python): ``acks=all`` + idempotent producer, ``linger_ms=10`` and
256 KiB batches, key = ``source_id`` (per-sensor order). Every ``send()`` returns a
future; they are collected, the producer is flushed **once**, then every future is
checked — no blocking ``.get()`` per send. The numbers (window, fetched, published,
events/s) are logged and returned (XCom ``return_value`` of ``ingest``).

Environment (set by ``labsupport.stack.services.airflow``; the DAG never imports labsupport):
``LAB_EVENTS_API_URL``, ``LAB_KAFKA_BOOTSTRAP``, ``LAB_INGEST_*`` (see ``_setting``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pendulum

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

DAG_ID = "ingest_events"
#: a copy of the event contract, ``labsupport.events.EVENT_FIELDS`` (this venv cannot import
#: labsupport; tests/unit/test_events.py ties the two): the JSON type of each field, and the
#: ones an event may leave out (``payload`` is optional, why: labsupport/events.py)
FIELDS = {"event_id": str, "event_time": str, "source_id": str, "event_type": str,
          "value": (int, float), "payload": (dict, type(None))}
OPTIONAL_FIELDS = ("payload",)


def _setting(name: str, default: str) -> str:
    """``LAB_INGEST_<NAME>`` from the environment the airflow service sets."""
    return os.environ.get(f"LAB_INGEST_{name}", default)


def _start_date() -> pendulum.DateTime:
    """Stable across parses (never "now"): the service records the lab's first start.

    Without it (the DAG parsed outside the lab) start at the current hour, so catchup
    is bounded to an hour of minutes instead of years of them."""
    raw = _setting("START_DATE", "")
    if raw:
        return pendulum.parse(raw).in_tz("UTC")
    return pendulum.now("UTC").start_of("hour")


#: the producer's own limit (kafka-python's default), set explicitly: `oversized` reads it
MAX_REQUEST_SIZE = 1_048_576
#: a record batch's header (61 bytes) plus one record's framing, rounded up
RECORD_OVERHEAD = 128
#: how much of a set-aside record its dead letter keeps
DEAD_LETTER_HEAD = 512


def time_now() -> float:
    return datetime.now(timezone.utc).timestamp()


class MalformedResponse(ValueError):
    """The API answered 200 with a body that is not the documented schema."""


class FetchFailed(RuntimeError):
    """The API kept failing (5xx, 429, timeouts) for one page after every attempt."""


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge some records of the window."""


def _epoch(dt) -> float:
    return dt.timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _get_page(client, url: str, params: dict, attempts: int):
    """One page, retried in-task for transient failures (honouring Retry-After).

    A malformed body is not retried here: the task fails and Airflow's exponential
    backoff decides when the whole window is fetched again."""
    import time

    import httpx

    last = "no attempt made"
    for attempt in range(1, attempts + 1):
        try:
            r = client.get(url, params=params)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
            wait = 0.5 * 2 ** (attempt - 1)
        else:
            if r.status_code == 200:
                return r
            last = f"HTTP {r.status_code}: {r.text[:200]}"
            if r.status_code == 429:
                wait = min(float(r.headers.get("Retry-After", "1") or 1), 30.0)
            elif r.status_code >= 500:
                wait = 0.5 * 2 ** (attempt - 1)
            else:  # a 4xx other than 429 is our bug, not a transient failure
                raise FetchFailed(f"events API refused the request {params}: {last}")
        if attempt < attempts:
            time.sleep(wait)
    raise FetchFailed(f"events API failed {attempts} times for {params}: {last}")


def _check_event(ev, since: float, until: float, where: str) -> None:
    if not isinstance(ev, dict):
        raise MalformedResponse(f"{where}: an event is {type(ev).__name__}, not an object")
    missing = [f for f in FIELDS if f not in ev and f not in OPTIONAL_FIELDS]
    if missing:
        raise MalformedResponse(f"{where}: event {ev.get('event_id', '?')} lacks {', '.join(missing)}")
    for f, kind in FIELDS.items():
        if f in ev and (not isinstance(ev[f], kind) or isinstance(ev[f], bool)):
            raise MalformedResponse(f"{where}: event {ev['event_id']} field {f} is {type(ev[f]).__name__}")
    try:
        t = datetime.fromisoformat(ev["event_time"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise MalformedResponse(f"{where}: event {ev['event_id']} event_time {ev['event_time']!r} "
                                "is not ISO-8601") from None
    if not since <= t < until:
        raise MalformedResponse(f"{where}: event {ev['event_id']} at {ev['event_time']} lies outside "
                                f"[{_iso(since)}, {_iso(until)})")


def fetch_window(api: str, since: float, until: float, page_size: int, timeout: float,
                 attempts: int) -> tuple[list[dict], int]:
    """Every event of ``[since, until)``, validated; (events, pages). Raises before
    returning anything if any page is bad, so nothing partial is ever published."""
    import json

    import httpx

    events: list[dict] = []
    seen: set[str] = set()
    cursor, pages = None, 0
    with httpx.Client(base_url=api, timeout=timeout) as client:
        while True:
            params = {"since": since, "until": until, "limit": page_size}
            if cursor:
                params["cursor"] = cursor
            r = _get_page(client, "/events", params, attempts)
            pages += 1
            where = f"malformed response from the events API (page {pages} of [{_iso(since)}, {_iso(until)}))"
            try:
                body = json.loads(r.content)
            except ValueError as exc:
                raise MalformedResponse(f"{where}: invalid JSON ({exc})") from None
            if not isinstance(body, dict) or not isinstance(body.get("events"), list):
                raise MalformedResponse(f"{where}: no 'events' list in the body")
            for ev in body["events"]:
                _check_event(ev, since, until, where)
                if ev["event_id"] in seen:
                    raise MalformedResponse(f"{where}: event {ev['event_id']} returned twice")
                seen.add(ev["event_id"])
            events.extend(body["events"])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        expected = _get_page(client, "/count", {"since": since, "until": until}, attempts).json()["count"]
    if expected != len(events):
        raise MalformedResponse(f"incomplete window [{_iso(since)}, {_iso(until)}): "
                                f"fetched {len(events)} events, the API counts {expected}")
    return events, pages


def dead_letter_topic(topic: str) -> str:
    """Where records ``topic`` cannot take are set aside (a copy of
    ``labsupport.ingest.topics.dead_letter_topic``; tests/unit/test_events.py ties them)."""
    return f"{topic}.dead-letter"


def oversized(key: bytes, value: bytes) -> str | None:
    """Why the broker would refuse this record, or None. The producer refuses a record over
    ``max_request_size`` itself (the broker's ``message.max.bytes``, 1,048,588 by default
    and not changed by the lab, is just above it); record framing adds under 100 bytes.
    Checked before ``send()`` because kafka-python, after one such refusal, failed the next
    sends to the same partition too (measured): one bad record must not fail its window."""
    size = len(key) + len(value)
    if size + RECORD_OVERHEAD > MAX_REQUEST_SIZE:
        return (f"record of {size:,} bytes over the {MAX_REQUEST_SIZE:,}-byte limit "
                f"(producer max_request_size, broker message.max.bytes)")
    return None


def _dead_letter(ev: dict, value: bytes, reason: str, topic: str, window: tuple[float, float]) -> bytes:
    """What is kept of a record set aside: who it was, why, and its first bytes."""
    import json

    return json.dumps({"event_id": ev.get("event_id"), "source_id": ev.get("source_id"),
                       "event_time": ev.get("event_time"), "topic": topic, "reason": reason, "bytes": len(value),
                       "window": [_iso(window[0]), _iso(window[1])], "dead_lettered_at": _iso(time_now()),
                       "head": value[:DEAD_LETTER_HEAD].decode("utf-8", "replace")},
                      separators=(",", ":")).encode()


def _ensure_dead_letter_topic(bootstrap: str, topic: str) -> None:
    """Kafka refuses to auto-create topics here; made on first need, replicated like ``topic``."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{DAG_ID}-admin")
    try:
        described = admin.describe_topics([topic])[0]
        replicas = len(described["partitions"][0]["replica_nodes"]) if described.get("partitions") else 1
        try:
            admin.create_topics([NewTopic(dead_letter_topic(topic), 1, replicas,
                                          topic_configs={"retention.ms": "-1", "retention.bytes": "-1"})])
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()


def publish(events: list[dict], topic: str, bootstrap: str,
            window: tuple[float, float] = (0.0, 0.0)) -> tuple[float, int]:
    """Produce every event, flush once, then check every future; returns (seconds taken,
    events set aside). An event Kafka cannot take (`oversized`) goes to
    ``dead_letter_topic(topic)`` with the reason, and the rest of the window is published:
    it stays a success, and the audit counts the event as dead-lettered, not missing."""
    import json
    import time

    from kafka import KafkaProducer

    started = time.perf_counter()
    records, set_aside = [], []
    for ev in events:
        key, value = ev["source_id"].encode(), json.dumps(ev, separators=(",", ":")).encode()
        reason = oversized(key, value)
        if reason:
            set_aside.append((key, _dead_letter(ev, value, reason, topic, window)))
        else:
            records.append((key, value))
    if set_aside:
        _ensure_dead_letter_topic(bootstrap, topic)
        print(f"{len(set_aside)} event(s) set aside to {dead_letter_topic(topic)}: {json.loads(set_aside[0][1])['reason']}")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             linger_ms=10, batch_size=256 * 1024, max_block_ms=15_000,
                             max_request_size=MAX_REQUEST_SIZE, request_timeout_ms=30_000,
                             client_id=f"{DAG_ID}-producer")
    try:
        futures = [producer.send(topic, key=k, value=v) for k, v in records]
        futures += [producer.send(dead_letter_topic(topic), key=k, value=v) for k, v in set_aside]
        producer.flush(timeout=120)
        failed = [f for f in futures if not f.is_done or f.failed()]
    finally:
        producer.close(timeout=10)
    if failed:
        first = failed[0].exception if failed[0].is_done else "not acknowledged before the flush timeout"
        raise PublishFailed(f"{len(failed)} of {len(futures)} records to {topic!r} failed, first: {first!r}")
    return time.perf_counter() - started, len(set_aside)


@dag(
    dag_id=DAG_ID,
    # a data-interval timetable: a plain cron string gives Airflow 3's CronTriggerTimetable,
    # whose runs have an empty interval — this DAG owns [start, end) windows
    schedule=CronDataIntervalTimetable(_setting("SCHEDULE", "* * * * *"), timezone="UTC"),
    start_date=_start_date(),
    catchup=_setting("CATCHUP", "False").lower() in ("1", "true", "yes", "on"),
    max_active_runs=4,
    tags=["streamlab", "ingestion"],
    default_args={
        "retries": int(_setting("RETRIES", "4")),
        "retry_delay": timedelta(seconds=float(_setting("RETRY_DELAY_S", "20"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=float(_setting("MAX_RETRY_DELAY_S", "600"))),
    },
    doc_md=__doc__,
)
def ingest_events():
    @task
    def plan_window() -> dict:
        """The window this run owns (see the DAG doc for manual runs) and its topic."""
        ctx = get_current_context()
        start, end = ctx.get("data_interval_start"), ctx.get("data_interval_end")
        conf = (ctx["dag_run"].conf or {}) if ctx.get("dag_run") else {}
        if start is not None and end is not None and end > start:
            since, until, why = _epoch(start), _epoch(end), "data interval"
        else:
            anchor = ctx.get("logical_date") or ctx["dag_run"].run_after
            until = float(int(_epoch(anchor)) // 60 * 60)
            since, why = until - 60, "manual run: last full minute before the logical date"
        window = {"since": since, "until": until, "topic": conf.get("topic") or _setting("TOPIC", "events"),
                  "page_size": int(conf.get("page_size") or _setting("PAGE_SIZE", "5000")), "why": why}
        print(f"window [{_iso(since)}, {_iso(until)}) → topic {window['topic']} ({why})")
        return window

    @task
    def ingest(window: dict) -> dict:
        """Fetch and validate the whole window, then publish it; returns the run's numbers."""
        import time

        api = os.environ.get("LAB_EVENTS_API_URL", "http://127.0.0.1:8000")
        bootstrap = os.environ.get("LAB_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        t0 = time.perf_counter()
        events, pages = fetch_window(api, window["since"], window["until"], window["page_size"],
                                     timeout=float(_setting("HTTP_TIMEOUT_S", "10")),
                                     attempts=int(_setting("HTTP_ATTEMPTS", "3")))
        fetch_s = time.perf_counter() - t0
        print(f"fetched {len(events)} events in {pages} pages in {fetch_s:.2f}s; all valid, publishing")
        publish_s, dead_lettered = publish(events, window["topic"], bootstrap, (window["since"], window["until"]))
        stats = {"since": _iso(window["since"]), "until": _iso(window["until"]), "topic": window["topic"],
                 "fetched": len(events), "published": len(events) - dead_lettered,
                 "dead_lettered": dead_lettered, "pages": pages,
                 "fetch_s": round(fetch_s, 3), "publish_s": round(publish_s, 3),
                 "events_per_s": round(len(events) / publish_s, 1) if publish_s > 0 else None,
                 "try_number": get_current_context()["ti"].try_number}
        print(f"published {stats['published']} events to {window['topic']} in {publish_s:.2f}s "
              f"({stats['events_per_s']} events/s)")
        return stats

    @task
    def report(stats: dict) -> None:
        """The run's numbers in its log; the same dict is the ingest task's XCom, which the
        lab reads per run through the REST API (`AirflowClient.result`)."""
        print(f"run numbers: {stats}")

    report(ingest(plan_window()))


ingest_events()
