"""`lab hub` on real processes: JupyterHub, its proxy and two learners' servers.

The hub runs from a lab home of its own (a temporary one: the instructor's room and
data are never touched) on free ports. Through the hub's REST API, with the instructor's
service token, a second learner is created, both servers are started, and code run in
each server's kernel must see its own ``LAB_LEARNER`` and namespace. Stopping one
learner's server leaves the other answering, and `lab hub stop` leaves no process of the
hub behind. Needs no Kafka nor Cassandra.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
from websockets.sync.client import connect

from labsupport.config import REPO_ROOT, LabConfig
from labsupport.namespace import Namespace, slug
from labsupport.stack.procs import TAG_VAR, read_record
from labsupport.stack.services.hub import HubService
from labsupport.waits import wait_for

LEARNERS = ["alice", "bob.smith"]  # the second sanitised (its slug carries a hash)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab(env: dict, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labsupport", *args], env=env, cwd=REPO_ROOT, text=True,
                          capture_output=True, timeout=timeout)


def _run_in_kernel(base: str, token: str, user: str, code: str) -> str:
    """``code`` executed in a new kernel of ``user``'s server (Jupyter's kernel REST and
    websocket API, through the hub's proxy); its printed output."""
    headers = {"Authorization": f"token {token}"}
    server = f"{base}/user/{user}/api"
    kernel = httpx.post(f"{server}/kernels", headers=headers, json={"name": "python3"}, timeout=60)
    kernel.raise_for_status()
    kid = kernel.json()["id"]
    msg_id = uuid.uuid4().hex
    request = {"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": msg_id,
                          "version": "5.3"},
               "parent_header": {}, "metadata": {}, "channel": "shell",
               "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                           "allow_stdin": False, "stop_on_error": True}}
    out, deadline = [], time.monotonic() + 60
    try:
        with connect(f"{server.replace('http', 'ws', 1)}/kernels/{kid}/channels", additional_headers=headers,
                     open_timeout=30) as ws:
            ws.send(json.dumps(request))
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["header"]["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    raise AssertionError(f"{user}'s kernel: {msg['content']['ename']}: {msg['content']['evalue']}")
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out)
        raise AssertionError(f"{user}'s kernel did not finish within 60 s")
    finally:
        httpx.delete(f"{server}/kernels/{kid}", headers=headers, timeout=30)


PROBE = ("import os; from labsupport.config import get_config; from labsupport.namespace import Namespace; "
         "print(os.environ['LAB_LEARNER'], Namespace.of(get_config()).topic('events'), os.environ['HOME'])")


def _server_ready(api: httpx.Client, user: str) -> bool:
    server = api.get(f"/users/{user}").raise_for_status().json()["servers"].get("")
    return bool(server and server["ready"])


def test_two_learners_each_in_their_own_namespace_and_a_clean_stop(tmp_path):
    home = tmp_path / "lab"
    ports = {"LAB_HUB_PORT": _free_port(), "LAB_HUB_API_PORT": _free_port(), "LAB_HUB_PROXY_API_PORT": _free_port()}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LAB_")}, "LAB_HOME": str(home),
           **{k: str(v) for k, v in ports.items()}}
    cfg = LabConfig.from_env(env)
    hub = HubService(cfg)

    started = time.monotonic()
    up = _lab(env, "hub", "--learners", LEARNERS[0], "--open", "lessons")
    start_s = time.monotonic() - started
    assert up.returncode == 0, up.stderr[-2000:]
    assert f"hub: http://127.0.0.1:{cfg.hub_port}" in up.stdout
    password = hub.password_file.read_text().strip()
    assert len(password) >= 8 and oct(hub.password_file.stat().st_mode & 0o777) == "0o600"
    assert oct(hub.token_file.stat().st_mode & 0o777) == "0o600"
    tag = read_record(hub.pidfile).tag
    token = hub.token_file.read_text().strip()
    base = hub.url
    try:
        with hub.client() as api:
            # the second learner is created through the REST API, as a latecomer would be
            assert api.post(f"/users/{LEARNERS[1]}").status_code == 201
            assert {u["name"] for u in api.get("/users").json()} >= set(LEARNERS)
            for user in LEARNERS:
                assert api.post(f"/users/{user}/server").status_code in (201, 202)
            for user in LEARNERS:
                wait_for(lambda u=user: _server_ready(api, u), timeout=90, what=f"{user}'s server")

            seen = {user: _run_in_kernel(base, token, user, PROBE).split() for user in LEARNERS}
            for user in LEARNERS:
                learner, topic, home_dir = seen[user]
                assert learner == user
                assert topic == Namespace(user).topic("events") == f"events__{slug(user)}"
                assert Path(home_dir) == hub.data_dir / "learners" / slug(user)
                # the server opens their own copy of the lessons
                root = httpx.get(f"{base}/user/{user}/api/contents", headers={"Authorization": f"token {token}"},
                                 timeout=30).raise_for_status().json()
                assert "03_the_stream.ipynb" in {item["name"] for item in root["content"]}
                assert (Path(home_dir) / "notebooks" / "03_the_stream.ipynb").is_file()
            assert seen["alice"][1] == "events__alice" and re.fullmatch(r"events__bobsmitx[0-9a-f]{8}",
                                                                         seen["bob.smith"][1])

            assert api.delete(f"/users/{LEARNERS[0]}/server").status_code in (202, 204)
            wait_for(lambda: not api.get(f"/users/{LEARNERS[0]}").json()["servers"], timeout=60,
                     what="alice's server to stop")
            assert _server_ready(api, LEARNERS[1])
            assert _run_in_kernel(base, token, LEARNERS[1], PROBE).split()[0] == LEARNERS[1]

            # a latecomer added with `lab hub` while the room runs: created, nobody's server touched
            late = _lab(env, "hub", "--learners", ",".join([*LEARNERS, "Carol"]))
            assert late.returncode == 0, late.stderr[-2000:]
            assert "hub: added carol" in late.stdout
            assert api.get("/users/carol").status_code == 200 and _server_ready(api, LEARNERS[1])
    finally:
        started = time.monotonic()
        down = _lab(env, "hub", "stop")
        stop_s = time.monotonic() - started
    assert down.returncode == 0, down.stderr[-2000:]
    left = [p for p in psutil.process_iter(["pid"]) if _tagged(p, tag)]
    assert not left, f"left behind: {[(p.pid, p.cmdline()) for p in left]}"
    for port in ports.values():
        with socket.socket() as s:  # free again: a server could listen there (the test's own
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections linger in TIME_WAIT)
            s.bind(("127.0.0.1", port))
            s.listen()
    print(f"\nhub: started in {start_s:.1f} s (lab hub, proxy install included), stopped in {stop_s:.1f} s")


def _tagged(p: psutil.Process, tag: str) -> bool:
    try:
        return p.environ().get(TAG_VAR) == tag
    except psutil.Error:
        return False


def _bad_start(tmp_path, *args: str, **env_changes: str) -> str:
    """`lab hub` that must fail: its one line (no traceback)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LAB_")}, "LAB_HOME": str(tmp_path),
           "LAB_HUB_PORT": str(_free_port()), "LAB_HUB_API_PORT": str(_free_port()),
           "LAB_HUB_PROXY_API_PORT": str(_free_port()), **env_changes}
    done = _lab(env, "hub", *args, "--open", "lessons", timeout=120)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def test_a_public_bind_without_tls_is_refused(tmp_path):
    assert "sends the workshop password in clear text without TLS" in _bad_start(
        tmp_path, "--learners", "alice", "--ip", "0.0.0.0")


def test_an_empty_learner_list_is_refused(tmp_path):
    assert "the learner list is empty" in _bad_start(tmp_path, "--learners", " , ")


def test_a_busy_port_names_its_owner_and_the_variable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        line = _bad_start(tmp_path, "--learners", "alice", LAB_HUB_PORT=str(s.getsockname()[1]))
    assert "is already in use" in line and "LAB_HUB_PORT=<port>" in line


def test_no_npm_says_how_to_get_it(tmp_path):
    line = _bad_start(tmp_path, "--learners", "alice", PATH="/nonexistent")
    assert "npm is not installed" in line and "apt-get install nodejs npm" in line
