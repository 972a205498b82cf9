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
from labsupport.stack.services.families import FAMILIES


def scrape_jobs(cfg: LabConfig) -> list[dict]:
    return yaml.safe_load((cfg.paths.stack_dir / "prometheus" / "jobs.yml").read_text())["jobs"]


def job_targets(cfg: LabConfig, job: dict) -> list[tuple[str, int]]:
    """(service, port) of each target of ``job``: one, or with ``per_node`` one per
    process of the job's service family (Kafka's controller and brokers, Cassandra's
    ring nodes share the job, so every query on ``job="kafka"`` sums or compares them;
    the ``service`` label tells them apart)."""
    if job.get("per_node"):
        return [(node.name, node.exporter_port) for node in FAMILIES[job["service"]].nodes(cfg)]
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

    def rendered(self) -> str:
        return yaml.safe_dump(render_config(self.cfg), sort_keys=False)

    def prepare(self) -> None:
        self.config_file.write_text(self.rendered())

    def refresh(self, progress=print) -> bool:
        """A running Prometheus scraping another layout's targets (Kafka switched between one
        broker and a cluster by `LAB_KAFKA_BROKERS=3 lab up`, or back) is put on this
        config's: the file re-rendered and a reload asked for (``--web.enable-lifecycle``),
        keeping its data and its process. True if it was reloaded."""
        try:
            current = self.config_file.read_text()
        except OSError:
            current = None
        if current == self.rendered():
            return False
        self.prepare()
        try:
            r = httpx.post(f"{self.cfg.prometheus}/-/reload", timeout=10)
        except httpx.HTTPError as exc:
            r = None
            why = type(exc).__name__
        if r is None or r.status_code != 200:
            why = f"HTTP {r.status_code} {r.text[:200]}" if r is not None else why
            raise ServiceFailed(f"prometheus: reloading {self.config_file} failed: {why}",
                                f"read {self.log}; `lab restart prometheus` starts it on the new file")
        progress(f"prometheus: reloaded on this layout's targets ({self.config_file})")
        return True

    def reload(self, progress=print) -> None:
        """`refresh`, then wait until the running services' targets are up."""
        self.refresh(progress)
        self.wait_ready(progress)

    def _failure(self, why: str) -> ServiceFailed:
        """A target that never came up is its service's exporter, not Prometheus's data:
        the remedy names the service (a purge would only lose history)."""
        failure = super()._failure(why)
        if "targets not up" not in why:
            return failure
        return ServiceFailed(failure.cause, "each target named is a lab service's metrics endpoint: `lab status` shows "
                                            "whether it runs, `lab logs <service>` why its exporter does not answer "
                                            "(Prometheus's own data is not the cause: no purge needed)",
                             log_tail=failure.log_tail)

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
