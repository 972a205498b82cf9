"""Parse and validate Kafka records in the JVM: good events one way, bad ones to quarantine.

Everything here is a Spark column expression, so parsing (``from_json``) and the checks
run inside the JVM and no Python UDF touches a row. A record that fails gets exactly one
``reason`` — the first rule it breaks, in the order of ``REASONS`` — and bad input
never raises: the stream keeps running and the quarantine table shows what came in.
"""

from __future__ import annotations

from labsupport.events import FIELDS
from labsupport.stream.settings import BUCKET_FORMATS, StreamSettings

#: every reason a record can be quarantined for, in the order the rules are tried
REASONS = ("null_key", "oversized", "malformed_json", "wrong_type", "missing_field",
           "event_time_future", "event_time_past")
#: fields an event must carry (payload is optional)
REQUIRED = tuple(f for f in FIELDS if f != "payload")
CORRUPT = "_corrupt_record"


def json_schema():
    """Strings except ``value``: a string ``value`` fails the parse (wrong_type), while
    ``payload`` (an object) comes back as its JSON text."""
    from pyspark.sql import types as T

    kinds = {"value": T.DoubleType()}
    return T.StructType([T.StructField(f, kinds.get(f, T.StringType())) for f in FIELDS]
                        + [T.StructField(CORRUPT, T.StringType())])


def parse(kafka_df, settings: StreamSettings):
    """Kafka source rows -> one row per record with the parsed fields and ``reason``
    (null for a good event), plus bucket/shard/day computed in the JVM."""
    from pyspark.sql import functions as F

    raw = F.col("value").cast("string")
    parsed = F.from_json(raw, json_schema(), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    df = kafka_df.select(
        F.col("key").cast("string").alias("key"), raw.alias("raw"),
        F.octet_length(F.col("value")).alias("raw_bytes"),
        F.col("topic"), F.col("partition").alias("kafka_partition"), F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("received_at"), parsed.alias("j"))
    df = df.select("*", F.try_to_timestamp(F.col("j.event_time")).alias("ts"))
    # "Too far in the future/past" is judged against the record's Kafka timestamp, not the
    # clock: a replay next month gives the same verdicts (replays stay idempotent), and no
    # per-batch literal changes the generated code, so Spark compiles it once, not every batch.
    now = F.col("received_at")
    all_null = None
    for f in FIELDS:
        cond = F.col(f"j.{f}").isNull()
        all_null = cond if all_null is None else (all_null & cond)
    any_missing = None
    for f in REQUIRED:
        cond = F.col(f"j.{f}").isNull()
        any_missing = cond if any_missing is None else (any_missing | cond)
    corrupt = F.col(f"j.{CORRUPT}").isNotNull()
    rules = [
        ("null_key", F.col("key").isNull()),
        ("oversized", F.col("raw_bytes") > settings.max_payload_bytes),
        ("malformed_json", F.col("j").isNull() | F.col("raw").isNull() | (corrupt & all_null)),
        ("wrong_type", corrupt | (F.col("j.event_time").isNotNull() & F.col("ts").isNull())),
        ("missing_field", any_missing),
        ("event_time_future", F.col("ts") > now + F.make_interval(secs=F.lit(settings.max_future_seconds))),
        ("event_time_past", F.col("ts") < now - F.make_interval(secs=F.lit(settings.max_past_seconds))),
    ]
    assert tuple(r for r, _ in rules) == REASONS
    reason = F.lit(None).cast("string")
    for name, cond in reversed(rules):
        reason = F.when(cond, F.lit(name)).otherwise(reason)
    spark_pattern, _ = BUCKET_FORMATS[settings.bucket_width]
    df = df.select("*", reason.alias("reason"))
    return df.select(
        # the raw text only travels on for quarantined records: half the bytes handed to Python
        "key", F.when(F.col("reason").isNotNull(), F.col("raw")).alias("raw"), "topic", "kafka_partition",
        "kafka_offset", "received_at", "reason",
        F.col("j.event_id").alias("event_id"), F.col("j.source_id").alias("source_id"),
        F.col("j.event_type").alias("event_type"), F.col("j.value").alias("value"),
        F.col("j.payload").alias("payload"),
        F.unix_millis(F.col("ts")).alias("event_ms"),
        F.date_format(F.col("ts"), spark_pattern).alias("bucket"),
        F.date_format(F.col("ts"), "yyyy-MM-dd").alias("day"),
        F.pmod(F.crc32(F.coalesce(F.col("j.source_id"), F.lit("")).cast("binary")), F.lit(settings.shards))
        .cast("int").alias("shard"),
        F.unix_millis(F.col("received_at")).alias("received_ms"),
        F.date_format(F.col("received_at"), "yyyy-MM-dd").alias("received_day"),
    )
