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

    probes: list[float] = []
    deadline = time.monotonic() + 120

    def load() -> None:
        """At least three pages each, and on until the prober has had 20 answers: on a
        fast machine three pages alone can be over before 20 probes could be (a race on
        the machine's speed, not a property of the API)."""
        with httpx.Client(base_url=api_url, timeout=60) as c:
            rounds = 0
            while rounds < 3 or (len(probes) < 20 and time.monotonic() < deadline):
                t = time.perf_counter()
                statuses.append(c.get("/events", params=BIG).status_code)
                big_latencies.append(time.perf_counter() - t)
                rounds += 1

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    watcher = threading.Thread(target=lambda: ([w.join() for w in workers], done.set()))
    watcher.start()
    with httpx.Client(base_url=api_url, timeout=30) as c:
        while not done.is_set():
            t = time.perf_counter()
            assert c.get("/health").json() == {"status": "ok"}
            probes.append(time.perf_counter() - t)
    watcher.join()
    assert len(statuses) >= 9 and set(statuses) == {200}
    typical_big = statistics.median(big_latencies)
    assert typical_big > 0.1, f"the load was too light to prove anything ({typical_big:.3f} s a page)"
    # answered all along, each answer far quicker than one page. Measured: ~30 ms against
    # 0.5-1 s pages when /health runs on the event loop; when pages were generated on the
    # loop, a probe waited for whole pages (median 0.6-1.2 s against 0.9-1.3 s pages, 4
    # answers in all). A third of a page separates the two with room for a busy machine,
    # where the worker thread holding the GIL slows every probe a little.
    assert len(probes) >= 20, f"only {len(probes)} health answers in {time.monotonic() - deadline + 120:.0f} s"
    assert statistics.median(probes) < typical_big / 3, (statistics.median(probes), typical_big)
