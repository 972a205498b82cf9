"""Readiness: one poll loop with a deadline for every service.

A probe is a callable returning ``None`` when the service is ready or a short string
saying what it is still waiting for. Probes raise only for unexpected errors; transient
ones (connection refused, no leader yet) come back as the waiting reason.
"""

from __future__ import annotations

import time
from typing import Callable

Probe = Callable[[], "str | None"]
Progress = Callable[[str], None]


class NotReady(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def poll_until_ready(probe: Probe, *, timeout: float, alive: Callable[[], bool] = lambda: True,
                     interval: float = 0.5, progress: Progress | None = None,
                     label: str = "service") -> float:
    """Poll ``probe`` until it returns None; returns the seconds it took.

    Raises NotReady when the deadline passes or ``alive()`` turns false (the process
    died: no point waiting for the deadline)."""
    start = time.monotonic()
    deadline = start + timeout
    last_report = 0.0
    reason = "not probed yet"
    while True:
        if not alive():
            raise NotReady(f"process exited while waiting ({reason})")
        reason = probe()  # a probe bug raises at once instead of looking like a slow service
        now = time.monotonic()
        if reason is None:
            return now - start
        if now >= deadline:
            raise NotReady(f"not ready after {timeout:.0f}s ({reason})")
        if progress and now - last_report >= 5:
            progress(f"{label}: waiting, {now - start:.0f}s ({reason})")
            last_report = now
        time.sleep(interval)
