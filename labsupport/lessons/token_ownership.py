"""Who owns what on a Cassandra ring with one token per node, for lesson 10: arithmetic a
learner can do by hand, and the shares of writes it predicts or measures.

On Murmur3Partitioner's ring, [-2**63, 2**63), a node owns the arc that *ends* at its
token: every token after the previous node's token, up to and including its own. A key
belongs to the node with the smallest token >= the key's token, wrapping past the
largest token to the first node. (Lesson 10's exercise 10.1 asks the learner to write
that rule; this module only describes the ring and counts shares.)

Pure: no driver, no Prometheus. The ring is a mapping node -> token, as the learner reads
it from ``system.local`` and ``system.peers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import pandas as pd

from labsupport.stack.services.cassandra import MIN_TOKEN

#: how many tokens the ring has
RING_SIZE = 2 ** 64


@dataclass(frozen=True)
class Arc:
    """The tokens one node owns: ``(after, up_to]``, wrapping around the ring's end."""
    node: str
    after: int  #: the previous node's token (not owned)
    up_to: int  #: this node's token (owned)

    @property
    def size(self) -> int:
        """How many tokens the arc holds (the whole ring for a node alone)."""
        return (self.up_to - self.after) % RING_SIZE or RING_SIZE

    @property
    def fraction(self) -> float:
        return self.size / RING_SIZE

    @property
    def wraps(self) -> bool:
        """The arc crosses the ring's end (from the largest token back to -2**63)."""
        return self.after >= self.up_to


def arcs(ring: Mapping[str, int]) -> list[Arc]:
    """Each node's arc, in token order. One token per node: a node listed twice is refused."""
    if not ring:
        raise ValueError("an empty ring owns nothing")
    tokens = sorted(ring.items(), key=lambda item: item[1])
    if len({t for _, t in tokens}) != len(tokens):
        raise ValueError(f"two nodes share a token: {dict(tokens)}")
    for node, token in tokens:
        if not MIN_TOKEN <= token < MIN_TOKEN + RING_SIZE:
            raise ValueError(f"{node}'s token {token} is outside Murmur3's ring [-2**63, 2**63)")
    return [Arc(node, tokens[i - 1][1], token) for i, (node, token) in enumerate(tokens)]


def ring_table(ring: Mapping[str, int]) -> pd.DataFrame:
    """The arcs as a table a learner reads: node, its token, the first and last token it
    owns, and the share of the ring."""
    rows = [{"node": a.node, "token": a.up_to, "owns from (exclusive)": a.after, "owns up to (inclusive)": a.up_to,
             "wraps around": a.wraps, "share of the ring": round(a.fraction, 4)} for a in arcs(ring)]
    return pd.DataFrame(rows).set_index("node")


def shares(counts: Mapping[str, float]) -> dict[str, float]:
    """Each node's part of the total (0 for every node when nothing was counted)."""
    total = sum(counts.values())
    return {node: (count / total if total else 0.0) for node, count in counts.items()}


def busiest(counts: Mapping[str, float]) -> tuple[str, float]:
    """(node, share) of the node that took the largest share (``counts`` may be shares)."""
    if not counts:
        raise ValueError("no node counted")
    part = shares(counts)
    node = max(part, key=lambda n: (part[n], n))
    return node, part[node]


def share_table(columns: Mapping[str, Mapping[str, float]], nodes: Iterable[str]) -> pd.DataFrame:
    """One row per node, for each named count its value and its share of that count's
    total (``{"naive writes": {...}, "sharded writes": {...}}``); a node a count does not
    name counted 0 — a node that took no write has no series in Prometheus."""
    nodes = list(nodes)
    frame = pd.DataFrame(index=pd.Index(nodes, name="node"))
    for title, counts in columns.items():
        full = {n: float(counts.get(n, 0)) for n in nodes}
        frame[title] = [int(full[n]) for n in nodes]
        frame[f"{title} (share)"] = [f"{shares(full)[n]:.1%}" for n in nodes]
    return frame
