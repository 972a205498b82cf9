"""Shared test plumbing.

The real stack is started once per test session (``lab_stack``) and stopped at the end.
Tests marked ``stack_teardown`` stop it themselves, so they are moved to the very end.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    last = [i for i in items if i.get_closest_marker("stack_teardown")]
    items[:] = [i for i in items if not i.get_closest_marker("stack_teardown")] + last


@pytest.fixture(scope="session")
def lab_stack():
    """Kafka, Cassandra and Prometheus, really running, for the whole session.

    There is no skip: a service that cannot start fails every test that needs it."""
    from labsupport import stack

    stack.up(["kafka", "cassandra", "prometheus"])
    yield stack
    stack.down()
