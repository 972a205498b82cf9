"""The client's own logic around Airflow's answers (the API itself is exercised against the
real Airflow in tests/integration/test_ingestion.py): here a fake transport plays back
answers Airflow gave, including the awkward ones."""

from __future__ import annotations

import httpx
import pytest

from labsupport.ingest.airflow_client import AirflowApiError, AirflowClient
from labsupport.config import LabConfig

SINCE = 1795651200  # 2026-11-26T00:00:00Z


def _client(handler) -> AirflowClient:
    client = AirflowClient(LabConfig())
    client._http = httpx.Client(base_url="http://airflow.test", transport=httpx.MockTransport(handler))
    client._token = "token"
    return client


def test_tries_keep_one_row_per_try_the_one_that_ended_last():
    rows = [{"try_number": 1, "state": "failed", "start_date": "T1", "end_date": "2026-11-26T01:00:05Z"},
            {"try_number": 2, "state": "running", "start_date": "T2", "end_date": None},
            {"try_number": 2, "state": "success", "start_date": "T2", "end_date": "2026-11-26T01:00:09Z"}]
    client = _client(lambda req: httpx.Response(200, json={"task_instances": rows[::-1]}))
    tries = client.task_tries("run-1")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]


def test_a_backfill_conflict_returns_our_own_backfill_even_when_it_already_finished():
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.method)
        if req.method == "POST":  # our first attempt committed, then finished: the retry meets it
            return httpx.Response(409, json={"detail": "There is already a running backfill"})
        return httpx.Response(200, json={"backfills": [
            {"id": 1, "from_date": "2026-11-26T00:00:00Z", "to_date": "2026-11-26T00:03:00Z",
             "created_at": "2020-01-01T00:00:00Z", "completed_at": "2020-01-01T00:01:00Z"},  # a learner's old one
            {"id": 7, "from_date": "2026-11-26T00:00:00Z", "to_date": "2026-11-26T00:03:00Z",
             "created_at": "2999-01-01T00:00:00Z", "completed_at": "2999-01-01T00:00:30Z"}]})

    assert _client(handler).backfill(SINCE, SINCE + 180, reprocess="failed")["id"] == 7
    assert calls == ["POST", "GET"]


def test_a_conflict_with_someone_elses_running_backfill_is_an_error_that_names_it():
    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            return httpx.Response(409, json={"detail": "There is already a running backfill"})
        return httpx.Response(200, json={"backfills": [
            {"id": 3, "from_date": "2026-11-25T00:00:00Z", "to_date": "2026-11-25T01:00:00Z",
             "created_at": "2026-11-25T02:00:00Z", "completed_at": None}]})

    with pytest.raises(AirflowApiError, match=r"another backfill of ingest_events is running: .*'id': 3"):
        _client(handler).backfill(SINCE, SINCE + 180)
