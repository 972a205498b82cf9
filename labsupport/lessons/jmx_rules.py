"""Kafka on other JMX exporter rules, for the metric-names lesson (07).

`kafka_rules(cfg)` names the rules file the running Kafka's exporter agent was started
with (read from its own command line, not from the config: a lesson that failed midway
may have left it on other rules). `use_kafka_rules("kafka.lumped.yml")` restarts Kafka
on that file only if it runs on another; `kafka_rules_restored` is the way back to the
configured rules (``LAB_KAFKA_JMX_RULES``, the shipped kafka.yml by default) that
`reset_to(7)` and the lesson's checks take first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from labsupport.config import LabConfig, get_config
from labsupport.stack import procs, services

LUMPED = "kafka.lumped.yml"
AGENT = "jmx_prometheus_javaagent"


def _agent_rules(argv: list[str]) -> str | None:
    """The rules file of ``-javaagent:…jmx_prometheus_javaagent-….jar=host:port:RULES``."""
    for arg in argv:
        if arg.startswith("-javaagent:") and AGENT in arg and "=" in arg:
            return Path(arg.split("=", 1)[1].rsplit(":", 1)[-1]).name
    return None


def kafka_rules(cfg: LabConfig | None = None) -> dict[str, str | None]:
    """Kafka process name → the rules file its exporter runs on (None: not running
    here, e.g. a compose container, whose rules follow the config it was started with)."""
    cfg = cfg or get_config()
    found = {}
    for name in services.expand(["kafka"], cfg):
        rec = procs.read_record(services.service(name, cfg).pidfile)
        found[name] = _agent_rules(rec.argv) if rec is not None and rec.alive() else None
    return found


def use_kafka_rules(rules: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """Kafka's exporter on ``rules`` (a file of stack/jmx): restarts Kafka only if a
    process runs on other rules (or none runs). Returns the seconds it took."""
    from labsupport import stack

    cfg = (cfg or get_config()).replace(kafka_jmx_rules=rules)
    started = time.monotonic()
    running = kafka_rules(cfg)
    if any(r is not None and r != rules for r in running.values()):
        progress(f"kafka: restarting on the JMX rules {rules} (now {', '.join(sorted(set(map(str, running.values()))))})")
        stack.restart("kafka", cfg=cfg, progress=progress)
    else:
        stack.up(["kafka"], cfg=cfg, progress=progress)
    return time.monotonic() - started


def kafka_rules_restored(cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> float:
    """Kafka back on the configured rules (the shipped kafka.yml unless
    ``LAB_KAFKA_JMX_RULES`` says otherwise)."""
    cfg = cfg or get_config()
    return use_kafka_rules(cfg.kafka_jmx_rules, cfg, progress)

