"""The service families with a multi-node layout (`layout.NodeFamily`), by name: what
the registry, the Prometheus targets and `lab status`/`lab down` treat alike."""

from __future__ import annotations

from labsupport.stack.services.cassandra import CASSANDRA
from labsupport.stack.services.kafka import KAFKA
from labsupport.stack.services.layout import NodeFamily

FAMILIES: dict[str, NodeFamily] = {family.name: family for family in (KAFKA, CASSANDRA)}
