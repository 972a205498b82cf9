"""The Streamlit pipeline view as a lab service."""

from __future__ import annotations

import sys

from labsupport.stack.services.base import Service, http_probe


class PipelineViewService(Service):
    name = "pipeline-view"
    has_data = False

    def ports(self) -> dict[str, int]:
        return {"pipeline_view_port": self.cfg.pipeline_view_port}

    def version(self) -> str:
        return "pipeline-view 1"

    def argv(self) -> list[str]:
        c = self.cfg
        return [sys.executable, "-m", "streamlit", "run", str(self.paths.repo / "dashboards" / "pipeline_view.py"),
                "--server.address", c.host, "--server.port", str(c.pipeline_view_port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none"]

    def env(self) -> dict[str, str]:
        return self.cfg.child_env()  # the app imports labsupport and reads the same config

    @property
    def url(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.pipeline_view_port}"

    def probe(self) -> str | None:
        return http_probe(f"{self.url}/_stcore/health")
