"""The events API as a local service: uvicorn serving ``labsupport.ingest.events_api`` from
the lab venv's own interpreter (``sys.executable``), so it runs exactly the code and
versions the notebooks import."""

from __future__ import annotations

import sys

from labsupport import __version__
from labsupport.stack.services.base import Service, http_probe


class EventsApiService(Service):
    name = "events-api"
    has_data = False  # stateless: events are a function of time

    def ports(self) -> dict[str, int]:
        return {"events_api_port": self.cfg.events_api_port}

    def version(self) -> str:
        return f"events-api {__version__}"

    def argv(self) -> list[str]:
        c = self.cfg
        return [sys.executable, "-m", "uvicorn", "--factory", "labsupport.ingest.events_api.app:create_app",
                "--host", c.host, "--port", str(c.events_api_port), "--no-access-log", "--log-level", "warning"]

    def env(self) -> dict[str, str]:
        return self.cfg.child_env()

    def probe(self) -> str | None:
        return http_probe(f"{self.cfg.events_api}/health")
