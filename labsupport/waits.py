"""Waiting the lab's way: poll a condition until it holds or a deadline passes, never
a bare sleep that hopes something happened meanwhile."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from labsupport.errors import LabError

T = TypeVar("T")


class TimedOut(LabError):
    """A condition did not hold before its deadline."""


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy
    (returned) or ``timeout`` seconds have passed (TimedOut, naming ``what`` and the
    last value seen, so a failure says how far it got)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})",
                           "check `lab status` and the service's log (`lab logs NAME`)")
        time.sleep(interval)


def wait_until_no_problems(problems: Callable[[], list], timeout: float, what: str, interval: float = 0.5) -> None:
    """Call ``problems`` every ``interval`` seconds until it returns an empty list, or
    raise TimedOut naming the problems it last returned: a bare ``== []`` condition would
    only report ``False`` and leave a failure to be guessed at."""
    last: list = []

    def settled() -> bool:
        nonlocal last
        last = problems()
        return not last

    try:
        wait_for(settled, timeout, what, interval)
    except TimedOut:
        raise TimedOut(f"timed out after {timeout:.0f} s waiting for {what}; still: {'; '.join(map(str, last))}",
                       "check `lab status` and the service's log (`lab logs NAME`)") from None
