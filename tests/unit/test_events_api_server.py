"""The events API under a real uvicorn on a loopback port: the most expensive request the
caps allow never starves ``/health``. (No lab service involved: the test starts and
stops its own server process.)"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx
import pytest

from labsupport.ingest.events_api.validation import MAX_PAGE, MAX_WINDOW_S
from labsupport.waits import wait_for

T0 = 1_767_225_660
#: the largest page of the longest window: the costliest request the API accepts
BIG = {"since": T0, "until": T0 + MAX_WINDOW_S, "limit": MAX_PAGE}
APP = "labsupport.ingest.events_api.app:create_app"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def api_url():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", APP, "--host", "127.0.0.1",
                             "--port", str(port), "--no-access-log", "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or _healthy(url), 30, "the test's uvicorn to answer", 0.1)
        assert proc.poll() is None, f"uvicorn exited with {proc.returncode}"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_health_answers_while_the_costliest_requests_run(api_url):
    """Two kinds of client at once: three threads fetching the costliest page over and
    over, and a prober hitting /health until they are done. Were the page generated on
    the event loop, every probe would queue behind whole pages (~0.2 s each, three deep)."""
    big_latencies: list[float] = []
    statuses: list[int] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=api_url, timeout=60) as c:
            for _ in range(3):
                t = time.perf_counter()
                statuses.append(c.get("/events", params=BIG).status_code)
                big_latencies.append(time.perf_counter() - t)

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    watcher = threading.Thread(target=lambda: ([w.join() for w in workers], done.set()))
    watcher.start()
    probes: list[float] = []
    with httpx.Client(base_url=api_url, timeout=30) as c:
        while not done.is_set():
            t = time.perf_counter()
            assert c.get("/health").json() == {"status": "ok"}
            probes.append(time.perf_counter() - t)
    watcher.join()
    assert statuses == [200] * 9
    typical_big = statistics.median(big_latencies)
    assert typical_big > 0.1, f"the load was too light to prove anything ({typical_big:.3f} s a page)"
    # answered all along (on the event loop: ~60 answers here; ~4 when pages blocked it),
    # each far quicker than one page
    assert len(probes) >= 15, f"only {len(probes)} health answers during {sum(big_latencies):.1f} s of load"
    assert statistics.median(probes) < typical_big / 10, (statistics.median(probes), typical_big)
