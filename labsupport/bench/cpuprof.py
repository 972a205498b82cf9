"""CPU seconds by process and by thread family: the benchmark's "where the time goes".

On a 2-core machine the question is not which step is slow but who burns the CPU.
Linux keeps per-thread CPU time in ``/proc/<pid>/task/<tid>/stat`` and the JVMs name
their threads, so grouping threads by name without their number ("MutationStage-3",
"C2 CompilerThread0", "Executor task launch worker for task 7") shows whether a JVM
spends its time on the work (Cassandra's MutationStage, Spark's executor tasks,
Kafka's request handlers) or on the JIT compiler, GC and housekeeping — without an
agent or a profiler attached.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict

import psutil

_TICK = os.sysconf("SC_CLK_TCK")
_NUMBER = re.compile(r"[-#\s]*\d+$")


def family(thread_name: str) -> str:
    """'MutationStage-3' -> 'MutationStage', 'C2 CompilerThre0' -> 'C2 CompilerThre'."""
    return _NUMBER.sub("", thread_name) or thread_name


def threads(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per thread family of one process."""
    out: dict[str, float] = defaultdict(float)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended between listdir and open
            continue
        out[family(name)] += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return dict(out)


def snapshot(processes: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """{label: {thread family: cpu seconds}} summed over each label's processes."""
    out: dict[str, dict[str, float]] = {}
    for label, pids in processes.items():
        acc: dict[str, float] = defaultdict(float)
        for pid in pids:
            for fam, secs in threads(pid).items():
                acc[fam] += secs
        out[label] = dict(acc)
    return out


def delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """What each label and thread family used between two snapshots (threads that ended
    in between are lost; the benchmark's processes keep theirs)."""
    return {label: {fam: secs - before.get(label, {}).get(fam, 0.0) for fam, secs in fams.items()}
            for label, fams in after.items()}


def totals(d: dict[str, dict[str, float]]) -> dict[str, float]:
    return {label: sum(fams.values()) for label, fams in d.items()}


def top(fams: dict[str, float], n: int = 4, floor: float = 0.05) -> list[tuple[str, float]]:
    return [(k, v) for k, v in sorted(fams.items(), key=lambda kv: -kv[1])[:n] if v >= floor]


def children_by_name(proc: psutil.Process, exclude: str = "", claimed: set[int] = frozenset()) -> dict[str, list[int]]:
    """Descendants of ``proc`` grouped by executable name (``java``, ``python``...), but
    not the ``claimed`` pids (accounted under another label) nor their descendants:
    services a notebook kernel started are its children too."""
    out: dict[str, list[int]] = defaultdict(list)
    skipped = set(claimed)
    for child in proc.children(recursive=True):  # parents come before their children
        try:
            if child.pid in skipped or child.ppid() in skipped:
                skipped.add(child.pid)
                continue
            if exclude and exclude in " ".join(child.cmdline()):
                continue
            out[child.name()].append(child.pid)
        except psutil.Error:
            continue
    return dict(out)
