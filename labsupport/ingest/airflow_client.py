"""Drive the ingestion DAG from a notebook or a test over Airflow's REST API v2.

Authentication is SimpleAuthManager's: ``POST /auth/token`` with the generated admin
password (read from the lab home, never stored in the repo) returns a JWT sent as a
Bearer token. Waiting is always a poll of the run's state with a deadline.

    from labsupport.ingest.airflow_client import AirflowClient
    af = AirflowClient()
    af.unpause()
    run = af.trigger(since=t0, until=t0 + 60, conf={"topic": "events"})
    af.wait_run(run["dag_run_id"], timeout=120)
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import httpx

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError
from labsupport.times import epoch, to_iso

DAG_ID = "ingest_events"
FINISHED = {"success", "failed"}
#: SimpleAuthManager writes the generated admin password here, under AIRFLOW_HOME
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


class AirflowApiError(LabError):
    """The Airflow REST API refused a request or is not reachable."""


class RunTimeout(LabError):
    """A DAG run (or a set of them) did not finish before its deadline."""


def passwords_file(cfg: LabConfig) -> Path:
    return cfg.paths.data("airflow") / PASSWORDS_FILE


def read_credentials(cfg: LabConfig) -> dict[str, str] | None:
    """{'username': ..., 'password': ...} from SimpleAuthManager's generated file, or
    None before Airflow's first start."""
    try:
        users = json.loads(passwords_file(cfg).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not users:
        return None
    user, password = next(iter(users.items()))
    return {"username": user, "password": password}


class AirflowClient:
    def __init__(self, cfg: LabConfig | None = None, dag_id: str = DAG_ID):
        self.cfg = cfg or get_config()
        self.dag_id = dag_id
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.cfg.airflow, timeout=30)

    # ---- auth ---------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        creds = read_credentials(self.cfg)
        if not creds:
            raise AirflowApiError("no Airflow credentials yet (the generated password file is missing)",
                                  "start Airflow with `lab up airflow`; it writes them on first start")
        return creds

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            r = self._http.post("/auth/token", json=self.credentials())
            if r.status_code not in (200, 201):
                raise AirflowApiError(f"Airflow refused the login: HTTP {r.status_code} {r.text[:200]}",
                                      "check `lab status` for the credentials; restart airflow if they changed")
            self._token = r.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, headers: dict | None = None, locked_timeout: float = 60,
                **kw) -> dict:
        """One API call. A 401 is retried once with a fresh token; a busy metadata DB
        (the lab's SQLite is locked while the scheduler writes: a 503 "database is
        locked" or a 500 "Database error", the write rolled back) is retried until
        ``locked_timeout`` seconds have passed."""
        deadline = time.monotonic() + locked_timeout
        while True:
            r = self._send(method, path, headers, **kw)
            if _db_busy(r) and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            break
        if r.status_code >= 400:
            raise AirflowApiError(f"{method} {path} → HTTP {r.status_code}: {r.text[:300]}",
                                  "read the message; `lab logs airflow` has the server side")
        return r.json() if r.content else {}

    def _send(self, method: str, path: str, headers: dict | None, **kw) -> httpx.Response:
        for attempt in (1, 2):  # a second time with a fresh token if the first expired
            auth = {"Authorization": f"Bearer {self.token(refresh=attempt == 2)}", **(headers or {})}
            try:
                r = self._http.request(method, f"/api/v2{path}", headers=auth, **kw)
            except httpx.HTTPError as exc:
                raise AirflowApiError(f"Airflow API unreachable at {self.cfg.airflow}: {type(exc).__name__}",
                                      "is it running? `lab up airflow`") from None
            if r.status_code != 401:
                break
        return r

    # ---- DAG ----------------------------------------------------------------------------
    def dag_parsed(self, dag_id: str | None = None) -> bool:
        try:
            self.request("GET", f"/dags/{dag_id or self.dag_id}")
            return True
        except AirflowApiError as exc:
            if "HTTP 404" in exc.cause:
                return False
            raise

    def dag(self) -> dict:
        """The DAG as the scheduler sees it: ``is_paused``, ``file_token`` and the next
        scheduled run (``next_dagrun_data_interval_start``/``_end``, ``next_dagrun_run_after``)."""
        return self.request("GET", f"/dags/{self.dag_id}")

    def reparse(self) -> None:
        """Ask the dag-processor to parse the DAG's file now (Airflow 3's "Reparse Dag
        File"): each parse recomputes the next scheduled run from the DAG's settings."""
        self.request("PUT", f"/parseDagFile/{self.dag()['file_token']}")

    def unpause(self, paused: bool = False) -> dict:
        return self.request("PATCH", f"/dags/{self.dag_id}", json={"is_paused": paused})

    def pause(self) -> dict:
        return self.unpause(paused=True)

    # ---- runs ---------------------------------------------------------------------------
    def trigger(self, since: datetime | float | None = None, until: datetime | float | None = None,
                conf: dict | None = None, logical_date: datetime | float | None = None,
                run_id: str | None = None) -> dict:
        """A manual run. With ``since``/``until`` it owns exactly that window; without,
        the DAG fetches the last full minute before ``logical_date`` (default now)."""
        # the logical date stays "now" by default even for an old window: Airflow creates
        # no task instances for a logical date before the DAG's start_date
        body: dict = {"conf": conf or {}, "logical_date": to_iso(logical_date or time.time())}
        if since is not None and until is not None:
            body.update(data_interval_start=to_iso(since), data_interval_end=to_iso(until))
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{self.dag_id}/dagRuns", json=body)

    def run(self, run_id: str) -> dict:
        return self.request("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}")

    def runs(self, run_type: str | None = None, limit: int = 100, **filters) -> list[dict]:
        """Runs with their state and data interval, oldest logical date first."""
        params = {"limit": limit, "order_by": "logical_date", **filters}
        if run_type:
            params["run_type"] = run_type
        return self.request("GET", f"/dags/{self.dag_id}/dagRuns", params=params)["dag_runs"]

    def latest_run(self, run_type: str | None = None) -> dict | None:
        """The run created last (of ``run_type`` if given), or None before the first."""
        params = {"limit": 1, "order_by": "-run_after"}
        if run_type:
            params["run_type"] = run_type
        runs = self.request("GET", f"/dags/{self.dag_id}/dagRuns", params=params)["dag_runs"]
        return runs[0] if runs else None

    def wait_run(self, run_id: str, timeout: float = 180, poll: float = 1.0) -> dict:
        """Poll until the run is success or failed; RunTimeout after ``timeout`` s."""
        return self.wait_runs([run_id], timeout, poll)[run_id]

    def wait_runs(self, run_ids: Iterable[str], timeout: float = 180, poll: float = 1.0) -> dict[str, dict]:
        pending, done = set(run_ids), {}
        deadline = time.monotonic() + timeout
        while pending:
            for rid in list(pending):
                r = self.run(rid)
                if r["state"] in FINISHED:
                    done[rid] = r
                    pending.discard(rid)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise RunTimeout(f"{len(pending)} run(s) of {self.dag_id} unfinished after {timeout:.0f}s: "
                                 f"{sorted(pending)[:3]}", "see their task logs in the UI or `lab logs airflow`")
            time.sleep(poll)
        return done

    def wait_for(self, predicate, timeout: float = 180, poll: float = 1.0, what: str = "runs"):
        """Poll ``runs()`` until ``predicate(runs)`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.runs())
            if value:
                return value
            if time.monotonic() > deadline:
                raise RunTimeout(f"{what} not reached after {timeout:.0f}s", "look at the runs in the Airflow UI")
            time.sleep(poll)

    # ---- backfill -----------------------------------------------------------------------
    def backfill(self, since: datetime | float, until: datetime | float, conf: dict | None = None,
                 reprocess: str = "none", max_active_runs: int = 4) -> dict:
        """Create a backfill (run by the scheduler) for the schedule's intervals between
        ``since`` and ``until``. ``reprocess``: none | failed | completed."""
        body = {"dag_id": self.dag_id, "from_date": to_iso(since), "to_date": to_iso(until),
                "dag_run_conf": conf or {}, "reprocess_behavior": reprocess, "max_active_runs": max_active_runs}
        # a POST retried after "database is locked" can meet its own first attempt (409)
        # before SQLite rolled it back, or find it committed: poll until one is clear
        deadline, called = time.monotonic() + 60, time.time()
        while True:
            try:
                return self.request("POST", "/backfills", json=body)
            except AirflowApiError as exc:
                if "HTTP 409" not in exc.cause or time.monotonic() > deadline:
                    raise
            known = self.request("GET", "/backfills", params={"dag_id": self.dag_id})["backfills"]
            # ours may have committed and even finished already: same range, running or created by this call
            mine = [b for b in known if epoch(b["from_date"]) == epoch(since) and epoch(b["to_date"]) == epoch(until)
                    and (not b.get("completed_at") or epoch(b["created_at"]) >= called - 1)]
            if mine:
                return mine[-1]
            active = [b for b in known if not b.get("completed_at")]
            if active:
                raise AirflowApiError(f"another backfill of {self.dag_id} is running: {active[0]}",
                                      "wait for it or cancel it (PUT /backfills/{id}/cancel)")
            time.sleep(1)

    # ---- runs by window --------------------------------------------------------------------
    def window_runs(self, since: datetime | float, until: datetime | float,
                    run_types: Iterable[str] = ("scheduled", "backfill")) -> list[dict]:
        """Runs of ``run_types`` whose window starts in ``[since, until)``, oldest first."""
        lo, hi = epoch(since), epoch(until)
        return [r for r in self.runs(limit=1000) if r["run_type"] in run_types and r.get("data_interval_start")
                and lo <= epoch(r["data_interval_start"]) < hi]

    def wait_windows(self, since: datetime | float, until: datetime | float, states: Iterable[str] = FINISHED,
                     run_types: Iterable[str] = ("scheduled", "backfill"), timeout: float = 180,
                     poll: float = 1.0, step: int = 60) -> list[dict]:
        """Poll until every ``step``-second window of ``[since, until)`` has exactly one
        run (of ``run_types``) and each is in ``states``; returns them, oldest first."""
        want = round((epoch(until) - epoch(since)) / step)
        states, run_types = set(states), tuple(run_types)

        def reached(_runs):
            got = self.window_runs(since, until, run_types)
            return got if len(got) == want and all(r["state"] in states for r in got) else None

        return self.wait_for(reached, timeout=timeout, poll=poll,
                             what=f"{want} window(s) from {to_iso(since)} in {sorted(states)}")

    def run_rows(self, runs: Iterable[dict], task_id: str = "ingest") -> list[dict]:
        """One row per run for a table: window, type, state, tries, fetched, published."""
        rows = []
        for r in runs:
            ti = self.task_instance(r["dag_run_id"], task_id)
            try:
                stats = self.result(r["dag_run_id"], task_id) if ti.get("state") == "success" else {}
            except AirflowApiError:
                stats = {}
            start = r.get("data_interval_start")
            rows.append({"window": f"{start[11:16]}–{r['data_interval_end'][11:16]}" if start else "-",
                         "run_type": r["run_type"], "state": r["state"], "tries": ti.get("try_number"),
                         "fetched": stats.get("fetched"), "published": stats.get("published"),
                         "topic": stats.get("topic"), "run_id": r["dag_run_id"]})
        return rows

    # ---- what a run did -----------------------------------------------------------------
    def result(self, run_id: str, task_id: str = "ingest") -> dict:
        """The task's return value (XCom): window, fetched, published, events/s."""
        x = self.request("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                                f"/xcomEntries/return_value", params={"deserialize": True})
        return x["value"]

    def task_instance(self, run_id: str, task_id: str = "ingest") -> dict:
        return self.request("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def task_tries(self, run_id: str, task_id: str = "ingest") -> list[dict]:
        """Every try of a task instance as Airflow recorded it, first try first: its
        number, state, start and end (a retried try keeps its own state and log)."""
        body = self.request("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        # the answer is the history rows plus the live task instance, which can repeat the
        # newest try while it is being archived: keep one row per try, the one that ended last
        tries: dict[int, dict] = {}
        for t in body["task_instances"]:
            row = {"try_number": t["try_number"], "state": t["state"], "start_date": t.get("start_date"),
                   "end_date": t.get("end_date")}
            seen = tries.get(row["try_number"])
            if seen is None or (row["end_date"] or "") >= (seen["end_date"] or ""):
                tries[row["try_number"]] = row
        return [tries[n] for n in sorted(tries)]

    def task_log(self, run_id: str, try_number: int, task_id: str = "ingest") -> str:
        body = self.request("GET", f"/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                            params={"full_content": True}, headers={"Accept": "application/json"})
        content = body.get("content", "")
        if isinstance(content, list):
            return "\n".join(_log_line(c) for c in content)
        return str(content)


def _db_busy(r: httpx.Response) -> bool:
    text = r.text.lower()
    return (r.status_code == 503 and "locked" in text) or (r.status_code == 500 and "database error" in text)


def _log_line(entry) -> str:
    """One structured log record as text, with the exception type and message if any."""
    if not isinstance(entry, dict):
        return str(entry)
    errors = "".join(f"\n  {e.get('exc_type')}: {e.get('exc_value')}" for e in entry.get("error_detail") or [])
    return f"{entry.get('event', '')}{errors}"
