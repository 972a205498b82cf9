"""Waiting on a list of problems: the timeout names what was still wrong."""

from __future__ import annotations

import itertools

import pytest

from labsupport.waits import TimedOut, wait_until_no_problems


def test_returns_once_the_problems_are_gone():
    rounds = iter([["kafka-2: no metadata yet"], ["kafka-2: no metadata yet"], []])
    wait_until_no_problems(lambda: next(rounds), 5, "every broker healthy", interval=0.01)


def test_a_timeout_names_the_problems_still_there():
    counter = itertools.count()
    with pytest.raises(TimedOut) as caught:
        wait_until_no_problems(lambda: [f"prometheus: targets not up: spark (stream) #{next(counter)}"],
                               0.05, "every service healthy", interval=0.01)
    message = str(caught.value)
    assert "every service healthy" in message and "prometheus: targets not up: spark (stream)" in message
    assert "False" not in message
