"""The API's own Prometheus metrics, in a registry per app (not the global one), so
several apps in one test process never collide on metric names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("events_api_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.errors = Counter("events_api_errors", "Faulty answers given on purpose, by fault kind",
                              ["kind"], registry=self.registry)
        self.events_served = Counter("events_api_events_served", "Events returned in 200 answers",
                                     registry=self.registry)
