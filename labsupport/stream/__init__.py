"""The Spark Structured Streaming job (Kafka → Cassandra) and its parts.

``python -m labsupport.stream`` runs it as a process (the managed service ``stream``);
``labsupport.stream.job.StreamJob`` runs the same job inside a notebook."""

from labsupport.stream.settings import StreamSettings

__all__ = ["StreamSettings"]
