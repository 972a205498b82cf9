"""Getting events in: the "external" events API, the Airflow client that drives the
ingestion DAG, Kafka producers and topic helpers (create, replay, consumer lag)."""
