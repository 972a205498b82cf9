"""JupyterLab in headless chromium: a lab notebook's live-plot cell renders a plotly
widget fed from the real Prometheus (screenshot kept in tests/artifacts/)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import httpx
import nbformat
import pytest

from labsupport.cli import JUPYTERLAB_QUIET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        'from labsupport.observe.widgets import LivePlot\nlive = LivePlot("Messages in/s", interval=1)\nlive.widget')]
    nbformat.write(nb, tmp_path / "live.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         *JUPYTERLAB_QUIET, "--ServerApp.allow_root=True"],
        stdout=open(tmp_path / "jupyter.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, (tmp_path / "jupyter.log").read_text()[-2000:]
        try:
            if httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
        time.sleep(0.5)
    yield base, token
    print((tmp_path / "jupyter.log").read_text()[-3000:])
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_live_plot_widget_renders_in_jupyterlab(lab_stack, jupyterlab, page, artifacts):
    base, token = jupyterlab
    page.goto(f"{base}/lab/tree/live.ipynb?token={token}")
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    cell.wait_for(timeout=60_000)
    page.locator(".jp-Spinner").wait_for(state="hidden", timeout=90_000)  # notebook fully loaded
    # a cell run before the kernel is connected is dropped: wait for the idle kernel
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    cell.click()
    page.keyboard.press("Shift+Enter")
    plot = page.locator(".jp-OutputArea .js-plotly-plot").first
    try:
        plot.wait_for(timeout=120_000)
    finally:
        page.screenshot(path=str(artifacts / "jupyterlab-live-plot.png"))
    # a trace with points means the kernel's thread got a series from Prometheus into the widget
    # (read from the plot's data: an idle broker's flat line has no height, so it never
    # counts as "visible" to the browser)
    page.wait_for_function("""() => {
        const gd = document.querySelector(".jp-OutputArea .js-plotly-plot");
        return gd && gd.data && gd.data.length > 0 && gd.data[0].x && gd.data[0].x.length > 1;
    }""", timeout=30_000)
    page.locator(".jp-OutputArea button:has-text('Stop')").first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "jupyterlab-live-plot.png"))
    assert plot.bounding_box()["width"] > 200
