"""Where writes land, for lesson 10: each Cassandra node's own count of the writes it
applied as a replica, per table, read from Prometheus.

The count is ``cassandra_table_writes_total{keyspace, table}`` (Table ``WriteLatency``
Count, one per partition update a node applies locally), one series per node, labelled
``service`` (``cassandra-1..N``). Not ``ClientRequest`` Write: that counts the requests a
node *coordinated*, wherever their replicas were.

Every run of the lesson writes into keyspaces of its own (``fresh_keyspace``), so each
node's count of each table starts from nothing and every number is absolute: no
"before" snapshot that a scrape could have missed, and a node that restarts (its counts
start again at 0 in the new process) counts exactly what reached it afterwards. A table
a node never wrote to has no series: it counts 0.
"""

from __future__ import annotations

import time
from typing import Mapping

import pandas as pd

from labsupport.config import LabConfig, get_config
from labsupport.observe import prom
from labsupport.waits import TimedOut, wait_for

#: the dashboard panel the lesson's live plot mirrors (stated in dashboards/…/pipeline.json)
PANEL = "Writes/s per node"
_PER_NODE = ('sum by (service, table) (cassandra_table_writes_total'
             '{{job="cassandra",keyspace="{keyspace}"}})')
#: a keyspace of a run: <prefix>_<epoch seconds>
_STAMP = "{prefix}_{stamp}"


def fresh_keyspace(prefix: str, now: float | None = None) -> str:
    """A keyspace name no earlier run used: ``<prefix>_<epoch seconds>``."""
    return _STAMP.format(prefix=prefix, stamp=int(now if now is not None else time.time()))


def earlier_runs(session, prefix: str, keep: tuple[str, ...] = ()) -> list[str]:
    """The keyspaces earlier runs of the lesson left (``<prefix>_<digits>``), but ``keep``."""
    rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
    return sorted(r.keyspace_name for r in rows if r.keyspace_name.startswith(f"{prefix}_")
                  and r.keyspace_name[len(prefix) + 1:].isdigit() and r.keyspace_name not in keep)


def table_writes(keyspace: str, cfg: LabConfig | None = None) -> dict[str, dict[str, int]]:
    """{table: {node: writes it applied}} for one keyspace, as Prometheus last scraped them."""
    out: dict[str, dict[str, int]] = {}
    for series in prom.query(_PER_NODE.format(keyspace=keyspace), cfg or get_config()):
        labels = series["metric"]
        out.setdefault(labels.get("table", ""), {})[labels.get("service", "")] = int(float(series["value"][1]))
    return out


def wait_landed(keyspace: str, table: str, total: int, timeout: float = 90,
                cfg: LabConfig | None = None) -> dict[str, int]:
    """{node: writes} of ``table`` once the nodes' counts add up to ``total`` (the rows
    written times the replication factor). Counts only grow, so once their sum reaches
    the total every node's count is final: none is a scrape behind."""
    cfg = cfg or get_config()
    found: dict[str, int] = {}

    def complete() -> bool:
        found.clear()
        found.update(table_writes(keyspace, cfg).get(table, {}))
        return sum(found.values()) >= total

    try:
        wait_for(complete, timeout, f"Prometheus to count {total:,} writes of {keyspace}.{table} over the nodes",
                 interval=1)
    except TimedOut as exc:
        raise TimedOut(f"{exc.cause}; the nodes counted {found or 'nothing'}", exc.remedy) from None
    return dict(found)


def wait_each_node(keyspace: str, expected: Mapping[str, Mapping[str, int]], timeout: float = 120,
                   cfg: LabConfig | None = None) -> dict[str, dict[str, int]]:
    """Wait until every node named in ``expected`` ({node: {table: writes}}) counts at
    least that many writes of each table; returns {node: {table: writes}} as counted then."""
    cfg = cfg or get_config()
    seen: dict[str, dict[str, int]] = {}

    def all_there() -> bool:
        counts = table_writes(keyspace, cfg)
        seen.clear()
        for node, tables in expected.items():
            seen[node] = {table: counts.get(table, {}).get(node, 0) for table in tables}
        return all(seen[node][t] >= n for node, tables in expected.items() for t, n in tables.items())

    try:
        wait_for(all_there, timeout, f"each node's count of {keyspace}'s tables to reach "
                 f"{ {n: dict(t) for n, t in expected.items()} }", interval=1)
    except TimedOut as exc:
        raise TimedOut(f"{exc.cause}; counted {seen}", exc.remedy) from None
    return {node: dict(tables) for node, tables in seen.items()}


def presence(acked: Mapping[str, int], *counted: Mapping[str, Mapping[str, int]]) -> pd.DataFrame:
    """Did every replica get every row? One row per node of ``counted`` (each {node: {table:
    writes}}, read at different moments: a node's count while it was up, its new process's
    count after it came back): the rows it must hold (every acknowledged row of ``acked``,
    {table: rows}: replication factor = nodes), the most it was seen to count of each table
    summed, and the rows missing. A node counts a table in one process only (the one up
    while the rows were written, or the one they were delivered to), so the most seen of
    each table is what it holds."""
    most: dict[str, dict[str, int]] = {}
    for counts in counted:
        for node, tables in counts.items():
            mine = most.setdefault(node, {})
            for table, n in tables.items():
                mine[table] = max(mine.get(table, 0), int(n))
    must = sum(acked.values())
    rows = [{"node": node, **{table: most[node].get(table, 0) for table in acked},
             "must hold": must, "counted": sum(most[node].get(table, 0) for table in acked),
             "missing": max(0, must - sum(most[node].get(table, 0) for table in acked))} for node in sorted(most)]
    return pd.DataFrame(rows).set_index("node")
