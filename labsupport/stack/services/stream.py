"""The streaming job as a managed service: its own process group, killable with -9.

``python -m labsupport.stream`` with the lab venv's python; the Spark JVM it launches is
in the same process group, so ``lab kill stream`` takes both down at once, as a crash
would. Ready once the query has committed a batch (or caught up with an empty topic),
read from its own metrics endpoint.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx

from labsupport.config import LabConfig
from labsupport.stack.services.base import Service
from labsupport.stream import checkpoint_files
from labsupport.stream.settings import StreamSettings, ephemeral_root


def lab_python(cfg: LabConfig) -> str:
    venv_python = cfg.paths.venv / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format -> {sample name: value summed over labels}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


class StreamService(Service):
    name = "stream"
    has_data = False  # its state is the checkpoint, kept under <lab home>/checkpoints

    def __init__(self, cfg: LabConfig, settings: StreamSettings | None = None):
        super().__init__(cfg)
        self.settings = settings or StreamSettings.from_env()

    def ports(self) -> dict[str, int]:
        return {"stream_metrics_port": self.cfg.stream_metrics_port, "spark_ui_port": self.cfg.spark_ui_port}

    def version(self) -> str:
        return "stream 1"

    def argv(self) -> list[str]:
        return [lab_python(self.cfg), "-m", "labsupport.stream"]

    def env(self) -> dict[str, str]:
        return self.cfg.child_env(**self.settings.to_env())

    def prepare(self) -> None:
        """Create the topic the job reads if it is missing (after ``lab down --purge kafka``,
        say): the job itself only waits for it, since creating topics is the ingestion's
        contract (``ingest.topics``), which this layer may use and the stream may not."""
        from kafka.errors import KafkaError

        from labsupport.ingest import topics
        from labsupport.stream.source_topic import topic_exists

        try:
            if not topic_exists(self.cfg.bootstrap_servers, self.settings.topic):
                topics.ensure_topic(self.settings.topic, cfg=self.cfg)
        except KafkaError:
            pass  # Kafka is not up: the job waits for its topic and says so in its log
        if "://" not in self.settings.checkpoint_location(self.cfg):  # a local checkpoint: check its batch logs
            checkpoint_files.check(self.checkpoint)

    def metrics(self) -> dict[str, float]:
        r = httpx.get(f"http://{self.cfg.host}:{self.cfg.stream_metrics_port}/metrics", timeout=3)
        r.raise_for_status()
        return parse_metrics(r.text)

    def metric(self, name: str, down: float | None = None) -> float | None:
        """One of the job's own metrics summed over labels; ``down`` while its endpoint
        does not answer (the job is starting, or was killed)."""
        try:
            return self.metrics().get(name, 0.0)
        except httpx.HTTPError:
            return down

    def probe(self) -> str | None:
        try:
            m = self.metrics()
        except httpx.HTTPError:
            return "metrics endpoint not up yet (Spark starting)"
        if m.get("query_active", 0) < 1:
            return "query not started"
        if m.get("batches_committed_total", 0) >= 1 or m.get("query_idle", 0) >= 1:
            return None
        return "no batch committed yet"

    @property
    def checkpoint(self) -> Path:
        return self.settings.checkpoint_dir(self.cfg)

    def simulate_container_restart(self, progress=print) -> None:
        """Failure mode 1: the container dies and comes back with an empty /tmp.

        SIGKILL the job, delete the ephemeral folder (what a new container would not
        have), start again. A persistent checkpoint survives this; an ephemeral one is
        gone, and the job starts over from ``starting_offsets``."""
        self.kill()
        shutil.rmtree(ephemeral_root(self.cfg), ignore_errors=True)
        self.start(progress)

    def purge(self) -> None:
        shutil.rmtree(self.checkpoint, ignore_errors=True)
        shutil.rmtree(self.paths.rendered(self.name), ignore_errors=True)
