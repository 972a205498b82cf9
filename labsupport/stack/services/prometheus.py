"""Prometheus from Debian's package, scraping every lab service."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import yaml

from labsupport.config import LabConfig
from labsupport.errors import MissingTool, ServiceFailed
from labsupport.stack import procs
from labsupport.stack.services.base import Service
from labsupport.stack.services.kafka import kafka_nodes


def scrape_jobs(cfg: LabConfig) -> list[dict]:
    return yaml.safe_load((cfg.paths.stack_dir / "prometheus" / "jobs.yml").read_text())["jobs"]


def job_targets(cfg: LabConfig, job: dict) -> list[tuple[str, int]]:
    """(service, port) of each target of ``job``: one, or with ``per_node`` one per
    Kafka process (a cluster's controller and brokers share the job, so every query
    on ``job="kafka"`` sums or compares them; the ``service`` label tells them apart)."""
    if job.get("per_node"):
        return [(node.name, node.exporter_port) for node in kafka_nodes(cfg)]
    return [(job["service"], getattr(cfg, job["port"]))]


def render_config(cfg: LabConfig, target_host=None) -> dict:
    """The Prometheus config for one backend.

    ``target_host(job)`` gives the host of a job's target: 127.0.0.1 locally, the
    compose service name in the compose stack."""
    target_host = target_host or (lambda job: cfg.host)
    scrape_configs = []
    for job in scrape_jobs(cfg):
        entry = {"job_name": job["job"],
                 "static_configs": [{"targets": [f"{target_host(job)}:{port}"], "labels": {"service": service}}
                                    for service, port in job_targets(cfg, job)]}
        if job.get("path"):
            entry["metrics_path"] = job["path"]
        scrape_configs.append(entry)
    return {"global": {"scrape_interval": cfg.scrape_interval, "evaluation_interval": cfg.scrape_interval,
                       "external_labels": {"lab": "streamlab"}},
            "scrape_configs": scrape_configs}


class PrometheusService(Service):
    name = "prometheus"

    def ports(self) -> dict[str, int]:
        return {"prometheus_port": self.cfg.prometheus_port}

    def binary(self) -> str:
        found = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
        if not found:
            raise MissingTool("prometheus is not installed", "run `lab setup` (installs Debian's prometheus package)")
        return found

    def version(self) -> str:
        # The TSDB format is stable across 2.x; record the major only.
        return "prometheus 2"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "prometheus.yml"

    def prepare(self) -> None:
        self.config_file.write_text(yaml.safe_dump(render_config(self.cfg), sort_keys=False))

    def reload(self, progress=print) -> None:
        """The running Prometheus on this config's targets (e.g. Kafka switched between one
        broker and a cluster): re-render the file and ask it to reload (``--web.enable-lifecycle``),
        keeping its data and its process; then wait until the running services' targets are up."""
        self.prepare()
        r = httpx.post(f"{self.cfg.prometheus}/-/reload", timeout=10)
        if r.status_code != 200:
            raise ServiceFailed(f"prometheus: reloading {self.config_file} failed: HTTP {r.status_code} {r.text[:200]}",
                                f"read {self.log}; `lab restart prometheus` starts it on the new file")
        progress(f"prometheus: reloaded on {self.config_file}")
        self.wait_ready(progress)

    def argv(self) -> list[str]:
        c = self.cfg
        return [self.binary(), f"--config.file={self.config_file}", f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                f"--web.listen-address={c.host}:{c.prometheus_port}", "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=7d", "--log.level=warn"]

    def expected_targets(self) -> set[tuple[str, str]]:
        """(job, service) of the targets whose service is running (its pid file names a live
        process): those must be up."""
        return {(j["job"], name) for j in scrape_jobs(self.cfg) for name, _ in job_targets(self.cfg, j)
                if (rec := procs.read_record(self.paths.pidfile(name))) is not None and rec.alive()}

    def probe(self) -> str | None:
        base = self.cfg.prometheus
        try:
            if httpx.get(f"{base}/-/ready", timeout=3).status_code != 200:
                return "not ready"
            targets = httpx.get(f"{base}/api/v1/targets", timeout=3).json()["data"]["activeTargets"]
        except httpx.HTTPError as exc:
            return f"HTTP {type(exc).__name__}"
        health = {(t["labels"]["job"], t["labels"].get("service")): t["health"] for t in targets}
        waiting = sorted(job if job == name else f"{job} ({name})"
                         for job, name in self.expected_targets() if health.get((job, name)) != "up")
        return f"targets not up: {', '.join(waiting)}" if waiting else None
