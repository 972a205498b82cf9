"""Apply stack/cassandra/schema.cql with cassandra-driver, idempotently.

The stream, the audit and the notebooks all call ``ensure`` before they touch the
tables, so no one has to remember a setup step. Every statement is IF NOT EXISTS; a
keyspace other than ``streamlab`` (a test's own) is the same schema under another name.
Its replication factor follows the Cassandra layout (`replication_factor`).
"""

from __future__ import annotations

import re
from pathlib import Path

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError

DEFAULT_KEYSPACE = "streamlab"
_KEYSPACE_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


class SchemaProblem(LabError):
    """The schema could not be applied (Cassandra down, bad keyspace name)."""


def replication_factor(cfg: LabConfig) -> int:
    """One copy on one node; on a ring, three (or one per node if fewer): a quorum of
    three survives one node down."""
    return min(3, max(1, cfg.cassandra_nodes))


def schema_file(cfg: LabConfig) -> Path:
    return cfg.paths.stack_dir / "cassandra" / "schema.cql"


def statements(cfg: LabConfig, keyspace: str = DEFAULT_KEYSPACE) -> list[str]:
    """The CQL statements of schema.cql, comments stripped, keyspace substituted."""
    if not _KEYSPACE_NAME.fullmatch(keyspace):
        raise SchemaProblem(f"{keyspace!r} is not a valid keyspace name",
                            "use lower-case letters, digits and _ (at most 48), starting with a letter")
    text = "\n".join(ln for ln in schema_file(cfg).read_text().splitlines() if not ln.lstrip().startswith("--"))
    out = []
    for stmt in text.split(";"):
        stmt = " ".join(stmt.split())
        if stmt:
            stmt = re.sub(r"'replication_factor': *\d+", f"'replication_factor': {replication_factor(cfg)}", stmt)
            out.append(re.sub(r"\bstreamlab\b", keyspace, stmt))
    return out


def connect(cfg: LabConfig | None = None, keyspace: str | None = None, **cluster_kw):
    """A (cluster, session) pair for the lab's Cassandra; the caller shuts the cluster down."""
    from cassandra.cluster import Cluster

    cfg = cfg or get_config()
    cluster = Cluster(cfg.cassandra_contact_points, port=cfg.cassandra_port, **cluster_kw)
    return cluster, cluster.connect(keyspace)


def ensure(cfg: LabConfig | None = None, keyspace: str = DEFAULT_KEYSPACE, session=None) -> list[str]:
    """Create the keyspace and tables that are missing; returns the statements run."""
    from cassandra.cluster import NoHostAvailable

    cfg = cfg or get_config()
    stmts = statements(cfg, keyspace)
    own = session is None
    cluster = None
    try:
        if own:
            cluster, session = connect(cfg)
        for stmt in stmts:
            session.execute(stmt, timeout=60)
        return stmts
    except NoHostAvailable:
        raise SchemaProblem(f"Cassandra at {cfg.endpoints()['cassandra']} is not answering",
                            "start it with `lab up cassandra`") from None
    finally:
        if own and cluster is not None:
            cluster.shutdown()
