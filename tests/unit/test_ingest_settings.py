"""IngestSettings is the ingestion DAG's contract; the DAG (in Airflow's venv, unable to
import labsupport) keeps its own defaults, which must be the same."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from labsupport.ingest.settings import BadIngestSetting, IngestSettings

DAG = Path(__file__).resolve().parents[2] / "dags" / "ingest_events.py"


def _dag_defaults() -> dict[str, str]:
    """Every ``_setting("NAME", "default")`` call in the DAG's source."""
    calls = [n for n in ast.walk(ast.parse(DAG.read_text()))
             if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "_setting"]
    return {c.args[0].value: c.args[1].value for c in calls}


def test_the_dag_reads_exactly_the_settings_fields_with_the_same_defaults():
    dag = _dag_defaults()
    env = IngestSettings().to_env()
    assert {f"LAB_INGEST_{k}" for k in dag} == set(env) | {"LAB_INGEST_START_DATE"}
    for name, default in dag.items():
        if name != "START_DATE":
            assert float(default) == float(env[f"LAB_INGEST_{name}"]) if re.fullmatch(r"[\d.]+", default) \
                else default == env[f"LAB_INGEST_{name}"], name


def test_round_trip_through_the_environment():
    s = IngestSettings(start_date="2026-11-26T10:00:00Z", topic="lesson02-1", retries=3, retry_delay_s=1.5,
                       max_retry_delay_s=8, page_size=1000)
    assert IngestSettings.from_env(s.to_env()) == s


def test_settings_that_cannot_work_are_refused_with_a_remedy():
    with pytest.raises(BadIngestSetting):
        IngestSettings(retry_delay_s=10, max_retry_delay_s=5)
    with pytest.raises(BadIngestSetting):
        IngestSettings.from_env({"LAB_INGEST_RETRIES": "three"})
