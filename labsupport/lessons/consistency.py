"""Consistency-level arithmetic for one data centre, for lesson 10's checks: how many
replicas a level waits for, whether it survives nodes down, and whether a write level and
a read level always overlap (a read then sees the write it follows).

A coordinator applies the same arithmetic before it sends anything: when fewer replicas
are alive than the level needs, it answers ``Unavailable`` at once — the write is
refused, not attempted.
"""

from __future__ import annotations

from cassandra import ConsistencyLevel

#: replicas each level waits for, as a function of the replication factor (one data
#: centre: the LOCAL_ and EACH_ levels equal their plain form; ANY is a write that a hint
#: alone satisfies, so it needs no replica at all)
_NEEDED = {
    "ANY": lambda rf: 0,
    "ONE": lambda rf: 1,
    "LOCAL_ONE": lambda rf: 1,
    "TWO": lambda rf: 2,
    "THREE": lambda rf: 3,
    "QUORUM": lambda rf: rf // 2 + 1,
    "LOCAL_QUORUM": lambda rf: rf // 2 + 1,
    "EACH_QUORUM": lambda rf: rf // 2 + 1,
    "ALL": lambda rf: rf,
}


def level_name(level: int | str) -> str:
    """``ConsistencyLevel.LOCAL_QUORUM`` (the driver's int) or ``"local_quorum"`` -> ``"LOCAL_QUORUM"``."""
    name = ConsistencyLevel.value_to_name.get(level) if isinstance(level, int) else str(level).upper()
    if name not in _NEEDED:
        raise ValueError(f"{level!r} is not a consistency level this lab knows ({', '.join(_NEEDED)})")
    return name


def replicas_needed(level: int | str, rf: int) -> int:
    """Replicas that must acknowledge (a write) or answer (a read) at ``level``."""
    if rf < 1:
        raise ValueError(f"replication factor {rf} must be at least 1")
    return _NEEDED[level_name(level)](rf)


def survives(level: int | str, rf: int, down: int) -> bool:
    """Enough replicas of every partition stay alive with ``down`` of them dead."""
    return replicas_needed(level, rf) <= rf - down


def reads_own_writes(write: int | str, read: int | str, rf: int) -> bool:
    """Every read at ``read`` meets at least one replica that took the write at ``write``:
    W + R > RF."""
    return replicas_needed(write, rf) + replicas_needed(read, rf) > rf
