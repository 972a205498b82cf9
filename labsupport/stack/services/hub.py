"""JupyterHub as a lab service (`lab hub`): a room served from one server, a JupyterLab
for each learner, each learner's server working in their own namespace (``LAB_LEARNER``
from ``JUPYTERHUB_USER``; labsupport.namespace).

The room's choices (learners, what they open, limits, a public bind with TLS) are kept in
the hub's data dir (`Room`, written by `lab hub`), so `lab up hub` / `lab restart hub`
start the same room; the lab config gives the ports. The settings JupyterHub reads
(stack/hub/jupyterhub_config.py) are rendered from both at each start. Secrets (the
workshop password, the instructor's API token) are generated once into owner-only files
of the data dir, never into the rendered settings or git.

Optional like Spark's own cluster: `lab up` alone does not start it; `lab down` and
`lab status` include it. Its learners' servers carry the service's process tag
(``env_keep``), so a `lab kill hub` leaves none of them behind either.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from labsupport.errors import LabError, MissingTool
from labsupport.namespace import check_distinct
from labsupport.stack.procs import TAG_VAR
from labsupport.stack.services.base import Service, http_probe

#: the instructor's API access: a JupyterHub service of this name holds the token
SERVICE = "lab-instructor"
OPEN_CHOICES = ("exercises", "lessons")


@dataclass(frozen=True)
class Room:
    """What the instructor chose for the room (kept as room.json in the hub's data dir)."""

    learners: list[str] = field(default_factory=list)
    #: the folder each learner gets a copy of: the student copies or the lessons
    material: str = ""
    #: an address that is not loopback is a public bind: it needs TLS (cert and key)
    ip: str = "127.0.0.1"
    ssl_cert: str = ""
    ssl_key: str = ""
    #: passed to the spawner; LocalProcessSpawner (this hub's) does not enforce them
    mem_limit: str = ""
    cpu_limit: float = 0.0

    def __post_init__(self):
        check_distinct(self.learners)
        try:
            address = ipaddress.ip_address(self.ip)
        except ValueError:
            raise LabError(f"--ip {self.ip!r} is not an IP address", "give one, e.g. --ip 127.0.0.1") from None
        if not address.is_loopback and not (self.ssl_cert and self.ssl_key):
            raise LabError(f"a public bind ({self.ip}) sends the workshop password in clear text without TLS",
                           "give --ssl-cert and --ssl-key too, or keep the hub on loopback behind your own "
                           "TLS proxy")
        for path in (self.ssl_cert, self.ssl_key):
            if path and not Path(path).is_file():
                raise LabError(f"TLS file {path} does not exist", "give the certificate's and key's real paths")

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_cert else "http"


class HubService(Service):
    name = "hub"
    optional = True  # started by `lab hub` (or `lab up hub`), not by `lab up`

    def ports(self) -> dict[str, int]:
        c = self.cfg
        return {"hub_port": c.hub_port, "hub_api_port": c.hub_api_port, "hub_proxy_api_port": c.hub_proxy_api_port}

    def bind_address(self, label: str) -> str:
        return self.room().ip if label == "hub_port" else self.cfg.host

    def version(self) -> str:
        try:
            import jupyterhub
        except ImportError:
            raise self._missing() from None
        return f"jupyterhub {jupyterhub.__version__.split('.')[0]}"  # its database's generation

    # ---- the room and its secrets ----------------------------------------------------------
    @property
    def room_file(self) -> Path:
        return self.data_dir / "room.json"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "workshop-password"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "instructor-token"

    def room(self) -> Room:
        if not self.room_file.exists():
            return Room()
        return Room(**json.loads(self.room_file.read_text()))

    def save_room(self, room: Room) -> None:
        self.check_data_dir()  # a new data dir gets the version marker before the room is kept in it
        self.room_file.write_text(json.dumps(asdict(room), indent=2) + "\n")

    def secret(self, path: Path, nbytes: int) -> str:
        """The secret in ``path``, generated once, readable by its owner only."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(nbytes) + "\n")
        os.chmod(path, 0o600)  # also when someone widened it
        return path.read_text().strip()

    # ---- starting --------------------------------------------------------------------------
    @property
    def jupyterhub(self) -> Path:
        return Path(sys.executable).parent / "jupyterhub"

    def _missing(self) -> MissingTool:
        return MissingTool("JupyterHub is not installed in the lab venv", "run ./lab setup (installs requirements/lab.lock)")

    @property
    def settings_file(self) -> Path:
        return self.run_dir / "hub.json"

    def prepare(self) -> None:
        from labsupport.stack.install import install_hub_proxy

        room = self.room()
        if not room.learners:
            raise LabError("the room has no learners", "give them: `lab hub --learners alice,bob` (or --learners-file)")
        if not Path(room.material).is_dir():
            raise LabError(f"the learners' material {room.material or '(none)'} is not a folder",
                           "start the room with `lab hub --open exercises` or `--open lessons`")
        if not self.jupyterhub.exists():
            raise self._missing()
        proxy = install_hub_proxy(self.cfg)
        self.secret(self.password_file, 9)
        self.secret(self.token_file, 32)
        c, venv_bin = self.cfg, Path(sys.executable).parent
        settings = {
            "data_dir": str(self.data_dir), "run_dir": str(self.run_dir), "homes": str(self.data_dir / "learners"),
            "bind_url": f"{room.scheme}://{room.ip}:{c.hub_port}", "hub_bind_url": f"http://{c.host}:{c.hub_api_port}",
            "proxy_command": str(proxy), "proxy_api_url": f"http://{c.host}:{c.hub_proxy_api_port}",
            "ssl_cert": room.ssl_cert, "ssl_key": room.ssl_key,
            "password_file": str(self.password_file), "token_file": str(self.token_file), "service": SERVICE,
            "learners": room.learners, "material": room.material,
            "singleuser": str(venv_bin / "jupyterhub-singleuser"),
            # the lab's config as every lab child gets it (to_env), minus any learner of the
            # instructor's shell: each server's LAB_LEARNER is its own user's
            "environment": {k: v for k, v in c.child_env().items()
                            if k.startswith("LAB_") and k not in ("LAB_LEARNER", TAG_VAR)}
                           | {"PYTHONPATH": str(self.paths.repo), "PYTHONUNBUFFERED": "1",
                              "PYSPARK_PYTHON": sys.executable},
            "env_keep": [TAG_VAR],
            # Jupyter refuses to run as root without being told (the hub's root, e.g. a container)
            "args": ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else [],
            "mem_limit": room.mem_limit, "cpu_limit": room.cpu_limit,
        }
        self.settings_file.write_text(json.dumps(settings, indent=2) + "\n")

    def argv(self) -> list[str]:
        return [str(self.jupyterhub), "-f", str(self.paths.stack_dir / "hub" / "jupyterhub_config.py")]

    def env(self) -> dict[str, str]:
        env = self.cfg.child_env(LAB_HUB_SETTINGS=str(self.settings_file))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        return env

    # ---- while it runs ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        room = self.room()
        return f"{room.scheme}://{room.ip}:{self.cfg.hub_port}"

    @property
    def api(self) -> str:
        """The hub's REST API, on loopback (the hub's own port, not the proxy's)."""
        return f"http://{self.cfg.host}:{self.cfg.hub_api_port}/hub/api"

    def probe(self) -> str | None:
        """Ready when the hub answers on its own port and through the proxy on the public one."""
        why = http_probe(f"{self.api}/")
        if why:
            return f"hub: {why}"
        try:  # the proxy routes to the hub; a self-signed certificate is the instructor's choice
            r = httpx.get(f"{self.url}/hub/api/", timeout=3, verify=False)
        except httpx.HTTPError as exc:
            return f"proxy: HTTP {type(exc).__name__}"
        return None if r.status_code == 200 else f"proxy answered {r.status_code}"

    def client(self) -> httpx.Client:
        """The instructor's client of the hub's REST API (the service token)."""
        return httpx.Client(base_url=self.api, timeout=30,
                            headers={"Authorization": f"token {self.secret(self.token_file, 32)}"})

    def refresh(self, progress=print) -> bool:
        """A learner added to the room while the hub runs is created through the REST API
        (JupyterHub lets users it knows log in); other changes need `lab restart hub`."""
        added = []
        with self.client() as api:
            known = {u["name"] for u in api.get("/users").raise_for_status().json()}
            for name in self.room().learners:
                if name not in known:
                    api.post(f"/users/{name}").raise_for_status()
                    added.append(name)
        if added:
            progress(f"{self.name}: added {', '.join(added)} (other room changes need `lab restart hub`)")
        return bool(added)

    def status(self) -> dict:
        st = super().status()
        room = self.room()
        if room.learners:
            st["extra"] = {"url": self.url, "learners": ", ".join(room.learners),
                           "workshop password": f"in {self.password_file} (owner-readable)"}
        return st
