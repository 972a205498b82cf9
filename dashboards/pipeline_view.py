"""streamlab pipeline view (Streamlit): the whole pipeline on one page.

Run by the lab as the `pipeline-view` service; refreshes itself every few seconds.
The numbers come from labsupport.observe.pipeline_stats (the same ones notebooks use):
rates and health from Prometheus, the total landed from Cassandra (a restart of the
stream resets its counters, not what it stored).
"""

import streamlit as st

from labsupport.ingest import topics
from labsupport.observe import pipeline_stats
from labsupport.observe.prom import PromError

st.set_page_config(page_title="streamlab pipeline", layout="wide")
st.title("streamlab pipeline")
st.caption("events-api → Airflow → Kafka → Spark foreachBatch → Cassandra · rates from Prometheus, "
           "total from Cassandra")


@st.cache_resource
def cassandra():
    """One session for the life of the view; the driver reconnects by itself."""
    from labsupport import schema

    return schema.connect(connect_timeout=3)[1]


def session_or_none():
    try:
        return cassandra()
    except Exception:  # not answering now: not cached, tried again on the next refresh
        return None


@st.cache_data(ttl=30)
def dead_lettered() -> int | None:
    """Records in the dead-letter topic of `events` (asked of Kafka twice a minute, not on
    every refresh; None when Kafka does not answer)."""
    return topics.records_in(topics.dead_letter_topic(topics.EVENTS_TOPIC))


@st.fragment(run_every=5)
def live() -> None:
    try:
        s = pipeline_stats.collect(session=session_or_none())
    except PromError as exc:
        st.error(str(exc))
        return
    c = st.columns(4)
    c[0].metric("Total events landed", "—" if s.events_landed is None else f"{s.events_landed:,}",
                help="Events the stream stored in Cassandra (its per-minute aggregate), across restarts"
                if s.events_landed is not None else "Cassandra is not answering")
    c[1].metric("Events/s now", f"{s.events_per_s_now:,.1f}")
    c[2].metric("Average events/s (15 min)", f"{s.events_per_s_avg:,.1f}")
    c[3].metric("Peak events/s (15 min)", f"{s.events_per_s_peak:,.1f}")

    st.subheader("Replication health")
    h = st.columns(4)
    h[0].metric("Under-replicated partitions", f"{s.under_replicated:.0f}")
    h[1].metric("Partitions under min ISR", f"{s.under_min_isr:.0f}")
    h[2].metric("Kafka nodes", pipeline_stats.nodes_health(s.kafka_nodes_up, s.kafka_nodes))
    h[3].metric("Cassandra nodes", pipeline_stats.nodes_health(s.cassandra_nodes_up, s.cassandra_nodes))

    st.subheader("Stream")
    t = st.columns(4)
    t[0].metric("Stream", "running" if s.stream_up else "not running")
    t[1].metric("Lag (event time)", f"{s.stream_lag_s:,.1f} s")
    t[2].metric("Quarantined events", f"{s.quarantined:,.0f}")
    aside = dead_lettered()
    t[3].metric("Dead-lettered at ingestion", "—" if aside is None else f"{aside:,}",
                help=f"events Kafka cannot take (over its record limit), set aside by the DAG with the reason "
                     f"in the {topics.dead_letter_topic(topics.EVENTS_TOPIC)!r} topic")


live()
