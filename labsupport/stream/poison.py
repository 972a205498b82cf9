"""The last line of defence: find the record that makes a micro-batch fail, quarantine it.

The validation rules (``labsupport.stream.validation``) catch every kind of bad record we
could think of. A kind nobody thought of would still fail its whole micro-batch — and
since Spark replays a failed batch from the checkpoint, it would fail again, forever,
with every good event behind it stuck. So when a batch fails with an error that is not
transient (not "Cassandra is down", which a restart is the right answer to), the job
splits it in halves and tries each; a half that fails is split again, down to single
records. Those are quarantined as ``poison_record`` (with the error in the log); the
rest is written as usual, in one commit.

If *nothing* in the batch can be written the failure is not the records' fault (a
dropped table, a broken sink): the query fails and restarts, counted in
``query_restarts_total``. Only when the very same batch has failed like that
``poison_after_failures`` times are its records quarantined too, so one record can
never restart the query more than a bounded number of times.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Errors a retry or a restart cures (Cassandra or the network away for a while).
    Everything else — a request Cassandra refuses, a value Arrow cannot convert — is
    what one bad record would raise, and worth splitting the batch for."""
    from cassandra import CoordinationFailure, OperationTimedOut, Timeout, Unavailable
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    transient = (Unavailable, Timeout, OperationTimedOut, NoHostAvailable, ConnectionException, ConnectionError,
                 TimeoutError)
    if isinstance(exc, CoordinationFailure):  # a replica failed the write: its fault, not the record's
        return True
    return isinstance(exc, transient)


def isolate(items: Sequence[T], attempt: Callable[[list[T]], object],
            on_split: Callable[[], None] = lambda: None) -> tuple[list, list[tuple[T, BaseException]]]:
    """Try ``attempt(items)``; split what fails in halves until single items fail alone.

    Returns the results of the attempts that succeeded and ``(item, error)`` for every
    item that failed on its own. Transient errors are raised, never blamed on an item.
    For one poison item in n, about 2·log2(n) attempts run."""
    done, poison = [], []
    stack = [list(items)]
    while stack:
        part = stack.pop()
        if not part:
            continue
        try:
            done.append(attempt(part))
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(part) == 1:
                poison.append((part[0], exc))
                continue
            on_split()
            mid = len(part) // 2
            stack += [part[mid:], part[:mid]]  # the first half is tried first
    return done, poison


def offset_ranges(keys: Sequence[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """{partition: (lowest, highest offset)} of a set of (partition, offset) keys. A
    contiguous slice of a batch's sorted keys is exactly these ranges within the batch."""
    out: dict[int, tuple[int, int]] = {}
    for part, off in keys:
        lo, hi = out.get(part, (off, off))
        out[part] = (min(lo, off), max(hi, off))
    return out


def error_text(exc: BaseException, limit: int = 300) -> str:
    """The error's first meaningful line (a Py4J error's Java message, not its trace)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = next((ln for ln in lines if "Exception" in ln or "Error" in ln), lines[0] if lines else "")
    return f"{type(exc).__name__}: {text}"[:limit]
