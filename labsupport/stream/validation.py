"""Parse and validate Kafka records in the JVM: good events one way, bad ones to quarantine.

Everything here is a Spark column expression, so parsing and the checks run inside the
JVM and no Python UDF touches a row. A record that fails gets exactly one ``reason`` —
the first rule it breaks, in the order of ``REASONS`` — and bad input never raises: the
stream keeps running and the quarantine table shows what came in.

What crosses to Python (``toPandas``) can always be converted, whatever a producer sent:
the key never crosses; the raw text crosses only for quarantined records, made valid
UTF-8 (``make_valid_utf8``) and cut to ``MAX_RAW_STORED`` characters here in the JVM;
the parsed fields cross only for good events, which are valid UTF-8 and strict JSON
(RFC 8259, parsed by ``try_parse_json``). Before this, one record with a key of bytes
``ff fe fa`` made pyarrow refuse the whole batch, and the query replayed it forever.

Two parsers, each for what it is good at: the strict VARIANT parser decides what is
JSON and the type of each field (``from_json`` would turn ``"event_id": 123`` into the
string "123", accept ``NaN`` and keep the last of two duplicate keys); ``from_json`` with
the contract's schema (``event_schema``) gives a good event its fields, and a lenient
``from_json`` runs only on records the strict one refused, to say why.

``parse`` is what the stream service runs: ``validate(with_contract(kafka_df))``. The two
steps are apart so that lesson 03's learner can write the ``from_json`` line with the
schema in their own query and then call the very validation the service calls: the two
queries then give the same rows.
"""

from __future__ import annotations

from labsupport.events import EVENT_FIELDS, IDENTIFIERS, MAX_IDENTIFIER_CHARS, REQUIRED
from labsupport.stream.settings import BUCKET_FORMATS, StreamSettings

#: every reason a record can be quarantined for by the rules, in the order they are tried
REASONS = (
    "null_key",              # no key: the topic is keyed by source, a keyless record is not ours
    "invalid_key",           # key bytes that are not UTF-8
    "tombstone",             # null value (a delete marker on a compacted topic)
    "empty_value",           # zero bytes, or only white space
    "oversized",             # more bytes than max_payload_bytes (never parsed)
    "invalid_utf8",          # value bytes that are not UTF-8
    "bad_record_timestamp",  # Kafka timestamp before 2000: the time rules below are judged against it
    "too_deep",              # JSON nested deeper than max_json_depth (never parsed)
    "non_finite_number",     # NaN, Infinity, or a number too large for a double (1e400)
    "duplicate_key",         # the same field twice in one object: which one is meant?
    "malformed_json",        # not JSON (RFC 8259): truncated, single quotes, comments, lone surrogates
    "not_an_object",         # JSON, but an array, a number, a string, true or null
    "missing_field",         # a required field absent or null
    "wrong_type",            # a string where a number belongs, or the reverse; payload not an object
    "bad_identifier",        # event_id/source_id/event_type blank or holding control characters
    "field_too_long",        # an identifier longer than max_identifier_chars
    "bad_event_time",        # event_time not ISO-8601 with a zone, or out of range
    "event_time_future",     # beyond max_future_seconds after the record's Kafka timestamp
    "event_time_past",       # before max_past_seconds ahead of it
)
#: a record the rules let through but that the sink could not write, found by splitting
#: the failing micro-batch (``labsupport.stream.poison``)
POISON = "poison_record"
ALL_REASONS = REASONS + (POISON,)
#: quarantine keeps the raw record, cut to this many characters (in the JVM)
MAX_RAW_STORED = 16384
#: Kafka timestamps before this (ms, 2000-01-01) are not a clock anyone runs
MIN_RECORD_MS = 946_684_800_000
#: JSON type names ``schema_of_variant`` reports, per contract kind
_KIND_TYPES = {"string": "^STRING$", "timestamp": "^STRING$", "object": "^OBJECT<",
               "number": "^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL.*)$"}
_ZONED_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"


def lenient_schema():
    """``from_json``'s schema, only to explain a refused record (which number was NaN)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField("value", T.DoubleType())])


def deeper_than(text, depth: int):
    """True when the JSON ``text`` nests objects/arrays more than ``depth`` levels.

    Strings are removed, then the brackets left are paired off from the inside ``depth``
    times: anything still there was deeper. It only runs for texts with more than
    ``depth`` opening brackets (two in a normal event), so it costs nothing per event."""
    from pyspark.sql import functions as F

    opens = F.length(text) - F.length(F.translate(text, "[{", ""))
    brackets = F.regexp_replace(F.regexp_replace(text, r'"(?:[^"\\]|\\.)*"', ""), r"[^\[\]{}]", "")
    for _ in range(depth):
        brackets = F.regexp_replace(brackets, r"\[\]|\{\}", "")
    return F.when(opens > depth, F.length(brackets) > 0).otherwise(F.lit(False))


def _any(conds):
    out = None
    for c in conds:
        out = c if out is None else (out | c)
    return out


def event_schema():
    """The event contract (``labsupport.events.EVENT_FIELDS``) as ``from_json``'s schema.

    ``event_time`` stays text: the rules check its ISO-8601 form and zone before it
    becomes a timestamp. ``payload`` is text too: ``from_json`` keeps an object given a
    string field as the object's JSON, which is how the tables store it."""
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "timestamp": T.StringType(), "number": T.DoubleType(),
             "object": T.StringType()}
    return T.StructType([T.StructField(f.name, kinds[f.kind], nullable=True) for f in EVENT_FIELDS])


#: the column ``validate`` reads the good events' fields from
EVENT_COLUMN = "event"


def with_contract(kafka_df):
    """The Kafka source's rows with ``event``: the value parsed by ``from_json`` with the
    contract's schema (the line lesson 03's learner writes in their own query)."""
    from pyspark.sql import functions as F

    return kafka_df.select("*", F.from_json(F.col("value").cast("string"), event_schema()).alias(EVENT_COLUMN))


def parse(kafka_df, settings: StreamSettings):
    """Kafka source rows -> one row per record with the parsed fields and ``reason``
    (null for a good event), plus bucket/shard/day computed in the JVM."""
    return validate(with_contract(kafka_df), settings)


def validate(events_df, settings: StreamSettings):
    """Rows of the Kafka source plus ``event`` (``from_json`` with ``event_schema()``) ->
    one row per record with ``reason`` (null for a good event) and, for a good event only,
    its fields (taken from ``event``), bucket, shard and day, all computed in the JVM."""
    from pyspark.sql import functions as F

    missing = {"key", "value", "topic", "partition", "offset", "timestamp", EVENT_COLUMN} - set(events_df.columns)
    if missing:
        raise ValueError(f"validate needs the Kafka source's columns and {EVENT_COLUMN!r} (from_json with "
                         f"event_schema()); missing: {', '.join(sorted(missing))}")
    kafka_df = events_df
    s = settings
    value = F.col("value")
    size = F.octet_length(value)
    utf8 = F.is_valid_utf8(value)
    # only a value of sane size and valid UTF-8 is ever given to a parser
    text = F.when(value.isNotNull() & (size <= s.max_payload_bytes) & utf8, value.cast("string"))
    df = kafka_df.select(
        F.col("key").isNull().alias("key_null"), value.isNull().alias("value_null"), F.coalesce(F.is_valid_utf8(F.col("key")), F.lit(True))
        .alias("key_utf8"), size.alias("raw_bytes"), utf8.alias("utf8"),
        # what quarantine stores: always valid UTF-8 and cut to size, whatever arrived
        F.substring(F.make_valid_utf8(value.cast("string")), 1, MAX_RAW_STORED).alias("raw"),
        F.col("topic"), F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("received_at"), text.alias("text"), F.col(EVENT_COLUMN))
    df = df.select("*", deeper_than(F.col("text"), s.max_json_depth).alias("deep"))
    df = df.select("*", F.try_parse_json(F.when(~F.col("deep"), F.col("text"))).alias("v"))
    v = F.col("v")

    def jtype(name):  # the JSON type of field `name`: STRING, BIGINT, OBJECT<…>, VOID (null), or null if absent
        return F.schema_of_variant(F.try_variant_get(v, f"$.{name}", "variant"))

    # objects are told by their JSON text ("{…}"): schema_of_variant would spell out the
    # whole nested schema of each, for every event
    objects = [f.name for f in EVENT_FIELDS if f.kind == "object"]
    payload = F.to_json(F.try_variant_get(v, "$.payload", "variant"))
    df = df.select("*", *(jtype(f.name).alias(f"t_{f.name}") for f in EVENT_FIELDS if f.kind != "object"),
                   *(F.when(payload != "null", F.when(payload.startswith("{"), "OBJECT<").otherwise("other"))
                     .alias(f"t_{name}") for name in objects))
    absent = {f.name: F.col(f"t_{f.name}").isNull() | (F.col(f"t_{f.name}") == "VOID") for f in EVENT_FIELDS}
    mistyped = {f.name: ~absent[f.name] & ~F.col(f"t_{f.name}").rlike(_KIND_TYPES[f.kind]) for f in EVENT_FIELDS}
    strings = {f: F.try_variant_get(v, f"$.{f}", "string") for f in IDENTIFIERS + ("event_time",)}
    number = F.when(~absent["value"] & ~mistyped["value"], F.try_variant_get(v, "$.value", "double"))
    df = df.select("*", number.alias("num"),
                   *(e.alias(f"s_{f}") for f, e in strings.items()))

    refused = F.col("text").isNotNull() & ~F.col("deep") & v.isNull()  # a parseable candidate the strict parser refused
    lenient = F.from_json(F.col("text"), lenient_schema())  # only evaluated for those (CASE is lazy)
    keys = F.json_object_keys(F.col("text"))
    finite = ~(F.isnan(F.col("num")) | (F.abs(F.col("num")) == float("inf")))
    ts = F.try_to_timestamp(F.col("s_event_time"))
    now = F.col("received_at")  # judged against the record's Kafka timestamp: replays give the same verdicts
    rules = [
        ("null_key", F.col("key_null")),
        ("invalid_key", ~F.col("key_utf8")),
        ("tombstone", F.col("value_null")),
        ("empty_value", (F.col("raw_bytes") == 0) | F.col("text").rlike(r"^\s*$")),
        ("oversized", F.col("raw_bytes") > s.max_payload_bytes),
        ("invalid_utf8", ~F.col("utf8")),
        ("bad_record_timestamp", F.unix_millis(now) < MIN_RECORD_MS),
        ("too_deep", F.col("deep")),
        ("non_finite_number", (refused & (F.isnan(lenient["value"]) | (F.abs(lenient["value"]) == float("inf"))))
         | (F.col("num").isNotNull() & ~finite)),
        ("duplicate_key", refused & (F.size(keys) > F.size(F.array_distinct(keys)))),
        # the strict parser stops after the first value: "{…} trailing" must be refused too
        ("malformed_json", v.isNull() | ~F.coalesce(F.json_array_length(F.concat(F.lit("["), F.col("text"), F.lit("]")))
                                                    == 1, F.lit(False))),
        ("not_an_object", ~F.col("text").rlike(r"^\s*\{")),  # valid JSON (v) starting with "{"
        ("missing_field", _any(absent[f] for f in REQUIRED)),
        ("wrong_type", _any(mistyped.values())),
        ("bad_identifier", _any((F.trim(F.col(f"s_{f}")) == "") | F.col(f"s_{f}").rlike(r"\p{Cc}")
                                for f in IDENTIFIERS)),
        ("field_too_long", _any(F.char_length(F.col(f"s_{f}")) > s.max_identifier_chars for f in IDENTIFIERS)),
        ("bad_event_time", ~F.col("s_event_time").rlike(_ZONED_ISO) | ts.isNull()),
        ("event_time_future", ts > now + F.make_interval(secs=F.lit(s.max_future_seconds))),
        ("event_time_past", ts < now - F.make_interval(secs=F.lit(s.max_past_seconds))),
    ]
    assert tuple(r for r, _ in rules) == REASONS
    reason = F.lit(None).cast("string")
    for name, cond in reversed(rules):
        reason = F.when(cond, F.lit(name)).otherwise(reason)
    df = df.select("*", reason.alias("reason"), ts.alias("ts"))
    good = F.col("reason").isNull()

    def field(expr, name):  # a parsed field travels on only for a good event
        return F.when(good, expr).alias(name)

    spark_pattern, _ = BUCKET_FORMATS[s.bucket_width]
    ts = F.col("ts")
    return df.select(
        # `raw` is kept for every row (poison splitting quarantines records the rules passed);
        # batch_frame hands it over only for quarantined ones
        "raw", "topic", "kafka_partition", "kafka_offset", "reason",
        # the strict parser judged the record; a good one's fields come from from_json's `event`
        *(field(F.col(f"{EVENT_COLUMN}.{name}"), name) for name in ("event_id", "source_id", "event_type",
                                                                     "value", "payload")),
        field(F.unix_millis(ts), "event_ms"),
        field(F.date_format(ts, spark_pattern), "bucket"),
        field(F.date_format(ts, "yyyy-MM-dd"), "day"),
        field(F.pmod(F.crc32(F.coalesce(F.col("s_source_id"), F.lit("")).cast("binary")), F.lit(s.shards))
              .cast("int"), "shard"),
        F.unix_millis(F.col("received_at")).alias("received_ms"),
        F.date_format(F.col("received_at"), "yyyy-MM-dd").alias("received_day"),
    )


def handover_columns(df):
    """The columns Python receives: ``raw`` only where a record is quarantined."""
    from pyspark.sql import functions as F

    return df.withColumn("raw", F.when(F.col("reason").isNotNull(), F.col("raw")))
