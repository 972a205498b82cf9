"""A JupyterLab server of its own for a browser test: its own port, token and root."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx

from labsupport.cli import JUPYTERLAB_QUIET
from labsupport.waits import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(proc: subprocess.Popen, base: str, token: str, log: Path) -> bool:
    assert proc.poll() is None, log.read_text()[-2000:]
    try:
        return httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def jupyterlab_at(root: Path, *extra_args: str):
    """JupyterLab serving ``root``; yields ``(base_url, token)`` once it answers, and stops
    its whole process group afterwards (its log's tail printed for a failing test)."""
    port, token = _free_port(), secrets.token_hex(16)
    log = root.parent / f"{root.name}-jupyter.log"
    # a workspace of its own: the user's saved one would reopen other tests' notebooks
    workspaces = root.parent / f"{root.name}-workspaces"
    workspaces.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         *JUPYTERLAB_QUIET, "--ServerApp.allow_root=True", f"--LabApp.workspaces_dir={workspaces}", *extra_args],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(proc, base, token, log), timeout=90, what="JupyterLab to answer")
        yield base, token
    finally:
        print(log.read_text()[-3000:])
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
