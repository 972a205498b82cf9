"""Kafka in KRaft mode: one node that is both broker and controller."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid

from labsupport.errors import ServiceFailed
from labsupport.stack.services.base import JvmService

HEALTH_TOPIC = "_lab_health"


def new_cluster_id() -> str:
    """URL-safe base64 of 16 random bytes, unpadded, not starting with '-' (Kafka's rule)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaService(JvmService):
    name = "kafka"
    jar_component = "kafka"
    main_class = "kafka.Kafka"

    def ports(self) -> dict[str, int]:
        c = self.cfg
        return {"kafka_port": c.kafka_port, "kafka_controller_port": c.kafka_controller_port,
                "kafka_exporter_port": c.kafka_exporter_port}

    def version(self) -> str:
        return f"kafka {self.jar_version('kafka_2.13')}"

    @property
    def properties_file(self):
        return self.run_dir / "server.properties"

    def render_properties(self) -> str:
        c = self.cfg
        base = (self.paths.stack_dir / "kafka" / "server.properties").read_text()
        host_keys = {
            "listeners": f"PLAINTEXT://{c.host}:{c.kafka_port},CONTROLLER://{c.host}:{c.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{c.host}:{c.kafka_port}",
            "controller.quorum.voters": f"1@{c.host}:{c.kafka_controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
        }
        extra = "".join(f"{k}={v}\n" for k, v in host_keys.items())
        return f"{base}\n# ---- rendered by the lab for this host ----\n{extra}"

    def jvm_args(self) -> list[str]:
        stack = self.paths.stack_dir
        return [
            f"-Xms{self.cfg.kafka_heap}", f"-Xmx{self.cfg.kafka_heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={stack / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.paths.home / 'logs'}",
            "-cp", self.classpath(),
        ]

    def prepare(self) -> None:
        self.properties_file.write_text(self.render_properties())
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self.format_storage()

    def format_storage(self) -> None:
        """First start only: KRaft storage must be formatted with a cluster id."""
        cmd = [self.java(), *self.jvm_args(), "kafka.tools.StorageTool", "format",
               "-t", new_cluster_id(), "-c", str(self.properties_file)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            lines = (out.stdout + out.stderr).strip().splitlines() or ["no output"]
            raise ServiceFailed(f"kafka: formatting storage failed: {lines[-1]}",
                                f"read {self.log}; `lab down --purge kafka` starts empty")

    def argv(self) -> list[str]:
        agent = self.exporter_agent(self.cfg.kafka_exporter_port, self.paths.stack_dir / "jmx" / "kafka.yml")
        return [self.java(), agent, *self.jvm_args(), self.main_class, str(self.properties_file)]

    def probe(self) -> str | None:
        """Ready when the broker answers metadata and a topic can be created."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaConfigurationError, KafkaError, TopicAlreadyExistsError

        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.cfg.bootstrap_servers, request_timeout_ms=5000,
                                     client_id="lab-readiness")
        except KafkaConfigurationError:
            raise
        except KafkaError as exc:
            return f"no metadata yet ({type(exc).__name__})"
        try:
            if not admin.describe_cluster().get("brokers"):
                return "no broker registered yet"
            if HEALTH_TOPIC not in admin.list_topics():
                try:
                    admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1)])
                except TopicAlreadyExistsError:
                    pass
            return None
        except KafkaConfigurationError:
            raise
        except KafkaError as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            admin.close()
