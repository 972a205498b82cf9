"""Airflow 3 as one local service: api-server, scheduler, dag-processor and triggerer.

They run from Airflow's own venv (its dependency tree conflicts with the lab's) under
one bash parent in ONE process group, so `lab down` (which signals the group) also
ends every LocalExecutor worker — `airflow standalone` alone leaves its workers
orphaned when only it gets SIGTERM. If any component exits, the parent takes the
others down too: a half-running Airflow would look healthy to nobody.

State lives under the lab home: AIRFLOW_HOME = data/airflow (airflow.cfg, the SQLite
metadata DB, task logs, SimpleAuthManager's generated password file). The JWT/API
secrets are generated on first start and kept there so every component — and every
restart — signs and checks the same tokens. Nothing secret is in the repo, and every
one of those files is created owner-only (mode 600): the lab writes its secrets file
with os.open(..., 0o600), and Airflow runs under ``umask 077`` for the files it makes.

Ports: the api-server on ``airflow_port`` (127.0.0.1), and nothing else. Airflow's
task-log servers are not started (``--skip-serve-logs`` on the scheduler and the
triggerer): Airflow 3.3's ``airflow/utils/serve_logs/core.py`` calls
``uvicorn.run(..., host="")``, every interface, with no host setting (apache/airflow PR
#60117, which proposed ``[logging] worker_log_server_host``, was closed unmerged). They
exist for workers on other machines; here every component writes and the api-server
reads the same ``[logging] base_log_folder``, which ``FileTaskHandler`` reads first, so
the UI and the REST API still show every task's log, running or finished.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from labsupport.errors import MissingTool
from labsupport.ingest import topics
from labsupport.ingest.airflow_client import DAG_ID, AirflowClient, passwords_file, read_credentials
from labsupport.ingest.settings import IngestSettings
from labsupport.stack.services.base import Service

COMPONENTS = ("scheduler", "dag-processor", "triggerer")
#: the components that would start a task-log server on every interface (see above)
SKIP_SERVE_LOGS = {"scheduler": " --skip-serve-logs", "triggerer": " --skip-serve-logs"}


class AirflowService(Service):
    name = "airflow"

    def __init__(self, cfg, settings: IngestSettings | None = None):
        super().__init__(cfg)
        #: what the DAG runs with; Airflow keeps them until its next restart
        self.settings = settings or IngestSettings.from_env()

    def ports(self) -> dict[str, int]:
        return {"airflow_port": self.cfg.airflow_port}

    @property
    def venv_bin(self) -> Path:
        return self.paths.airflow_venv / "bin"

    def version(self) -> str:
        # the metadata DB schema follows Airflow's version: record it from the venv
        for dist in (self.paths.airflow_venv / "lib").glob("python*/site-packages/apache_airflow-*.dist-info"):
            return f"airflow {dist.name.split('-')[1]}"
        return "airflow unknown"

    @property
    def password_file(self) -> Path:
        return passwords_file(self.cfg)

    def _secrets(self) -> dict[str, str]:
        path = self.data_dir / "lab-secrets.json"
        if not path.exists():
            values = {"jwt_secret": secrets.token_urlsafe(32), "api_secret_key": secrets.token_urlsafe(32),
                      "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode()}
            # created owner-only: a chmod after writing would leave a window with the
            # secrets world-readable (O_EXCL: never through a planted file or symlink)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(values))
        return json.loads(path.read_text())

    def _ingest_start(self) -> str:
        """The DAG's start_date: the lab's first Airflow start (kept), floored to the
        minute, unless the settings give one (lessons and tests choose a recent one)."""
        if self.settings.start_date:
            return self.settings.start_date
        path = self.data_dir / "ingest-start"
        if not path.exists():
            first = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=5)
            path.write_text(first.isoformat())
        return path.read_text().strip()

    def env(self) -> dict[str, str]:
        c, s = self.cfg, self._secrets()
        home = self.data_dir
        # the lab's config the one way every child gets it (the DAG reads LAB_EVENTS_API_URL
        # and LAB_KAFKA_BOOTSTRAP from it); no stray AIRFLOW__/LAB_ variable of this shell
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "LAB_"))}
        env.update(c.to_env())
        env.update({
            "PATH": f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.paths.airflow_venv),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.paths.repo / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": s["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{c.airflow}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": c.host,
            "AIRFLOW__API__PORT": str(c.airflow_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": c.airflow,
            "AIRFLOW__API__SECRET_KEY": s["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": s["jwt_secret"],
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # not served (--skip-serve-logs), but a running task's log is still looked for
            # there: our own closed ports, never another lab's or program's 8793/8794
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(c.airflow_port + 1),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(c.airflow_port + 2),
            **self.settings.replace(start_date=self._ingest_start()).to_env(),
        })
        return env

    def prepare(self) -> None:
        if not (self.venv_bin / "airflow").exists():
            raise MissingTool(f"airflow: no Airflow venv at {self.paths.airflow_venv}",
                              "run `lab setup` (installs requirements/airflow.lock into it)")
        self._ensure_events_topic()

    def _ensure_events_topic(self) -> None:
        """The DAG publishes to `events`; Kafka refuses to auto-create topics here. Asked
        only when a broker listens, a process or a container alike (`lab up` starts Kafka
        first; Airflow started alone skips it, as it did when Kafka was not running)."""
        if any(_listening(self.cfg.host, int(port)) for _, port in
               (hp.rsplit(":", 1) for hp in self.cfg.bootstrap_servers.split(","))):
            topics.ensure_topic(cfg=self.cfg)

    def argv(self) -> list[str]:
        c = self.cfg
        # bash is the group's parent: it migrates the DB, starts the four components
        # and, when any of them exits, ends the whole group (trap), so no half-Airflow.
        # umask 077 first: what Airflow creates (the SQLite metadata DB, the generated
        # password file, airflow.cfg, task logs) is owner-only from its first byte.
        script = "\n".join([
            "set -e",
            "umask 077",
            "trap 'trap - TERM EXIT; kill 0 2>/dev/null' TERM EXIT",
            "airflow db migrate",
            f"airflow api-server --host {c.host} --port {c.airflow_port} &",
            *(f"airflow {name}{SKIP_SERVE_LOGS.get(name, '')} &" for name in COMPONENTS),
            "wait -n",
            "echo 'an airflow component exited; stopping the others' >&2",
            "exit 1",
        ])
        return ["bash", "-c", script]

    # ---- readiness ------------------------------------------------------------------------
    def credentials(self) -> dict[str, str] | None:
        return read_credentials(self.cfg)

    def probe(self) -> str | None:
        """Ready when scheduler, dag-processor and triggerer report healthy and the
        ingestion DAG has been parsed (it is in the API's DAG list)."""
        base = self.cfg.airflow
        try:
            health = httpx.get(f"{base}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"api-server: {type(exc).__name__}"
        unhealthy = [n for n in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                     if (health.get(n) or {}).get("status") != "healthy"]
        if unhealthy:
            return f"not healthy yet: {', '.join(unhealthy)}"
        try:
            client = AirflowClient(self.cfg)
            return None if client.dag_parsed(DAG_ID) else f"DAG {DAG_ID} not parsed yet"
        except Exception as exc:  # noqa: BLE001 - any API hiccup is "not ready yet"
            return f"{type(exc).__name__}: {str(exc)[:120]}"

    def status(self) -> dict:
        st = super().status()
        creds = self.credentials()
        if creds:
            st["extra"] = {"url": self.cfg.airflow, **creds, "credentials_file": str(self.password_file)}
        return st


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
