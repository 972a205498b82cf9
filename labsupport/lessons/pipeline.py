"""The production pipeline's switch: the ingestion DAG on the lab's default settings,
publishing to `events`, flowing or paused.

Lesson 02 builds the DAG and ends by turning it on (`switch_on`); `lab pipeline on|off`
is the terminal's switch and `lab status` prints `state()`. A lesson that needs a quiet
machine pauses it only while it measures (`paused_pipeline`).

Why "on" resumes at the present: on the lab's defaults the DAG's catchup is off
(dags/ingest_events.py), so Airflow schedules the latest complete interval rather than
one run per minute missed (a day paused would be 1,440 runs, two cores busy for as long
as the gap lasted). The scheduler starts from the next run it computed at the DAG's last
parse, though, which can be a window from before the pause: `switch_on` asks for a
parse and waits until the next run is the present one before it unpauses. Filling the
gap is an explicit choice: a backfill from a time the learner names, shown with progress.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from labsupport import stack
from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError
from labsupport.ingest import topics
from labsupport.ingest.airflow_client import AirflowApiError, AirflowClient
from labsupport.ingest.settings import PREFIX, IngestSettings
from labsupport.lessons.sandboxes import restart_airflow
from labsupport.stack.services.airflow import AirflowService
from labsupport.times import epoch, to_iso, utc
from labsupport.waits import TimedOut, wait_for

_AGO = re.compile(r"(\d+)\s*(m|h|d)")
_AGO_S = {"m": 60, "h": 3600, "d": 86400}


class BadTime(LabError):
    """A --backfill-from value that is neither an ISO-8601 time nor a duration ago."""


# ---- what runs --------------------------------------------------------------------------------
def running_settings(cfg: LabConfig | None = None) -> IngestSettings | None:
    """The settings the running Airflow's DAG reads (its service's environment), or None
    when Airflow is not running. A lesson's sandbox shows here with its own topic."""
    record = AirflowService(cfg or get_config()).record()
    leader = record.leader() if record else None
    if leader is None:
        return None
    env = {k: v for k, v in leader.environ().items() if k.startswith(PREFIX)}
    return IngestSettings.from_env(env)


def on_defaults(settings: IngestSettings) -> bool:
    """Whether ``settings`` are the lab's defaults (``LAB_INGEST_*`` of this shell, if
    any), whatever the start date the service recorded."""
    return settings.replace(start_date="") == IngestSettings.from_env().replace(start_date="")


@dataclass
class PipelineState:
    airflow: str                      # the airflow service's state: running, stopped, crashed
    settings: IngestSettings | None   # what the DAG runs with (None: Airflow not running)
    paused: bool | None = None        # None: Airflow's API did not answer
    next_window: str | None = None    # the next scheduled run's data interval start
    last_run: dict | None = None      # the run created last: run_type, window, state

    @property
    def flowing(self) -> bool:
        """Scheduled runs publish to the lab's `events` topic."""
        return self.airflow == "running" and self.paused is False and on_defaults(self.settings)

    def describe(self) -> str:
        """One line for `lab status`, the start block and a lesson's last cell."""
        if self.airflow != "running":
            return f"pipeline: off (airflow {self.airflow}; `./lab pipeline on` starts it)"
        topic = self.settings.topic
        where = f"publishes to {topic}" + ("" if on_defaults(self.settings) else " (a lesson's settings)")
        if self.paused is None:
            return f"pipeline: unknown (Airflow's API did not answer); DAG {where}"
        run = self.last_run
        last = (f"last run {run['window']} {run['run_type']} {run['state']}" if run else "no run yet")
        if self.flowing:
            head = "pipeline: flowing (DAG unpaused"
        elif self.paused:
            head = "pipeline: paused (DAG paused"
        else:
            head = "pipeline: not the lab's (DAG unpaused on a lesson's settings"
        return f"{head}, {where}); {last}; `./lab pipeline {'off' if not self.paused else 'on'}`"


def _window(run: dict) -> str:
    start, end = run.get("data_interval_start"), run.get("data_interval_end")
    return f"[{start[11:16]}, {end[11:16]})" if start and end else "-"


def state(cfg: LabConfig | None = None) -> PipelineState:
    """The pipeline as it is now: Airflow's state, the DAG's settings, paused or not, the
    next scheduled window and the last run."""
    cfg = cfg or get_config()
    svc = AirflowService(cfg)
    settings = running_settings(cfg)
    if settings is None:
        return PipelineState(svc.state(), None)
    st = PipelineState("running", settings)
    try:
        client = AirflowClient(cfg)
        dag = client.dag()
        run = client.latest_run()
    except AirflowApiError:
        return st
    st.paused = dag["is_paused"]
    st.next_window = dag.get("next_dagrun_data_interval_start")
    if run:
        st.last_run = {"run_type": run["run_type"], "window": _window(run), "state": run["state"],
                       "run_id": run["dag_run_id"]}
    return st


# ---- on and off ---------------------------------------------------------------------------------
def _stale(dag: dict, now: float) -> bool:
    """The next scheduled run is a window older than the latest complete one: a whole
    interval has ended since the window the scheduler would start with."""
    start, run_after = dag.get("next_dagrun_data_interval_start"), dag.get("next_dagrun_run_after")
    end = dag.get("next_dagrun_data_interval_end")
    if not (start and end and run_after):
        return False
    return epoch(run_after) + (epoch(end) - epoch(start)) <= now


def resume_at_present(client: AirflowClient, timeout: float = 90) -> dict:
    """Unpause so that the first scheduled run is the latest complete window: ask for a
    parse (which recomputes the next run with catchup off) until the next run is no
    older than that, then unpause. Returns the DAG as it was just before unpausing."""
    dag = client.dag()
    if _stale(dag, time.time()):
        client.reparse()
        dag = wait_for(lambda: (d := client.dag()) and not _stale(d, time.time()) and d, timeout,
                       "the dag-processor to move the DAG's next run to the present "
                       "(a parse after the pause; `lab logs airflow`)", interval=1)
    client.unpause()
    return dag


def switch_on(cfg: LabConfig | None = None, backfill_from: str | float | None = None,
              progress: Callable[[str], None] = print) -> PipelineState:
    """The production pipeline on: Kafka and the events API up, Airflow on the lab's
    default settings (restarted if a lesson left its own), the `events` topic there, the
    DAG unpaused at the present. With ``backfill_from`` (an ISO-8601 time, or ``90m``,
    ``6h``, ``2d`` ago), the windows from then up to where the schedule resumed are
    backfilled (windows that already ran are skipped), and this waits for them."""
    cfg = cfg or get_config()
    since = parse_since(backfill_from) if backfill_from is not None else None
    stack.up(["kafka", "events-api"], cfg=cfg, progress=progress)
    settings = running_settings(cfg)
    if settings is not None and not on_defaults(settings):
        progress(f"pipeline: Airflow runs a lesson's settings (topic {settings.topic}); "
                 "restarting it on the lab's defaults (about a minute)")
        restart_airflow(None, cfg)
    elif settings is None:
        stack.up(["airflow"], cfg=cfg, progress=progress)
    topics.ensure_topic(cfg=cfg)
    client = AirflowClient(cfg)
    dag = resume_at_present(client)
    progress(f"pipeline: on, resuming with the window from {dag.get('next_dagrun_data_interval_start') or 'now'}"
             " (missed minutes are not run; `--backfill-from TIME` fills them)")
    if since is not None:
        resume = dag.get("next_dagrun_data_interval_start")
        backfill_gap(client, since, epoch(resume) if resume else time.time() // 60 * 60, progress)
    return state(cfg)


def switch_off(cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> PipelineState:
    """Pause the DAG: no new scheduled runs (a run already started finishes)."""
    cfg = cfg or get_config()
    if running_settings(cfg) is None:
        progress("pipeline: Airflow is not running, nothing flows")
        return state(cfg)
    AirflowClient(cfg).pause()
    progress("pipeline: off (DAG paused; a run already started finishes)")
    return state(cfg)


def parse_since(value: str | float) -> float:
    """Epoch seconds of an ISO-8601 time or of ``<n>m``/``<n>h``/``<n>d`` ago, floored
    to the minute."""
    if isinstance(value, (int, float)):
        t = float(value)
    else:
        m = _AGO.fullmatch(value.strip())
        try:
            t = time.time() - int(m[1]) * _AGO_S[m[2]] if m else utc(value).timestamp()
        except ValueError:
            raise BadTime(f"--backfill-from {value!r} is not a time", "give ISO-8601 UTC "
                          "(2026-12-01T18:00Z) or a duration ago (90m, 6h, 2d)") from None
    if t >= time.time():
        raise BadTime(f"--backfill-from {to_iso(t)} is not in the past", "name a time before now")
    return t // 60 * 60


def backfill_gap(client: AirflowClient, since: float, until: float, progress: Callable[[str], None] = print,
                 timeout: float | None = None, poll: float = 5) -> dict:
    """Backfill the windows starting in ``[since, until)`` (runs that exist are kept) and
    report progress until the backfill completes; returns {"windows", "success", "failed"}."""
    if until - since < 60:
        progress("pipeline: no gap to backfill")
        return {"windows": 0, "success": 0, "failed": 0}
    backfill = client.backfill(since, until - 60, reprocess="none")
    progress(f"pipeline: backfilling [{to_iso(since)}, {to_iso(until)}): backfill {backfill['id']}")
    window = {"logical_date_gte": to_iso(since), "logical_date_lt": to_iso(until)}

    def count(**filters) -> int:
        return client.request("GET", f"/dags/{client.dag_id}/dagRuns",
                              params={"limit": 1, **window, **filters})["total_entries"]

    deadline = None if timeout is None else time.monotonic() + timeout
    shown = None
    while True:
        done = client.request("GET", f"/backfills/{backfill['id']}").get("completed_at")
        now = {"windows": count(), "success": count(state="success"), "failed": count(state="failed")}
        if now != shown:
            progress(f"pipeline: backfill {now['success'] + now['failed']}/{now['windows']} windows done "
                     f"({now['success']} success, {now['failed']} failed)")
            shown = now
        if done:
            return now
        if deadline is not None and time.monotonic() > deadline:
            raise LabError(f"backfill {backfill['id']} unfinished after {timeout:.0f} s: {now}",
                           "it goes on in Airflow; watch it in the UI (Browse → Backfills)")
        time.sleep(poll)


# ---- quiet while a lesson measures --------------------------------------------------------------
def _running_tasks(client: AirflowClient) -> int:
    """Task instances of the DAG running now. Not its queued or running *runs*: a paused
    DAG's queued runs never start and its running runs schedule no further task, so
    waiting for those would wait forever; a task that has started does finish."""
    return client.request("GET", f"/dags/{client.dag_id}/dagRuns/~/taskInstances",
                          params={"limit": 1, "state": "running"})["total_entries"] or 0


@contextmanager
def paused_pipeline(cfg: LabConfig | None = None, progress: Callable[[str], None] = print,
                    timeout: float = 30) -> Iterator[bool]:
    """While the block runs, the ingestion DAG is paused and its running tasks have finished
    (a run of one minute's window takes a few seconds; ``timeout`` bounds the wait), so a
    measurement has the machine to itself; afterwards it is unpaused (at the present)
    if it was flowing before. Yields whether it paused anything."""
    cfg = cfg or get_config()
    client = AirflowClient(cfg) if running_settings(cfg) is not None else None
    paused = False
    if client is not None:
        try:
            paused = not client.dag()["is_paused"]
        except AirflowApiError:
            client = None
    if paused:
        client.pause()
        progress("pipeline: paused while this measures")
    try:
        if paused and not _tasks_finished(client, timeout):
            # a task instance Airflow still marks running after a stop or a kill (until its
            # scheduler times the heartbeat out, minutes later) uses no CPU: measure anyway
            progress(f"pipeline: a task still marked running after {timeout:.0f} s (left by a stopped "
                     f"Airflow?); measuring anyway")
        yield paused
    finally:
        if paused:
            resume_at_present(client)
            progress("pipeline: flowing again")


def _tasks_finished(client: AirflowClient, timeout: float) -> bool:
    try:
        wait_for(lambda: _running_tasks(client) == 0, timeout, "the ingestion DAG's running tasks to finish")
        return True
    except TimedOut:
        return False


# ---- paused across a lesson's cells ---------------------------------------------------------------
def _marker(cfg: LabConfig, reason: str):
    return cfg.paths.data("airflow") / f"paused-for-{reason}"


def pause_for(reason: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> bool:
    """`paused_pipeline` for a pause that spans a lesson's cells (lesson 09 measures on a
    three-broker cluster from its set-up to its last cell): pause if the pipeline flows
    and leave a marker, so `resume_after(reason)` (even from a restarted kernel) turns
    it back on. Returns whether it paused."""
    cfg = cfg or get_config()
    if running_settings(cfg) is None:
        return False
    client = AirflowClient(cfg)
    try:
        if client.dag()["is_paused"]:
            return False
    except AirflowApiError:
        return False
    client.pause()
    _marker(cfg, reason).write_text(to_iso(time.time()))
    progress(f"pipeline: paused for {reason} (`./lab pipeline on` resumes it)")
    return True


def resume_after(reason: str, cfg: LabConfig | None = None, progress: Callable[[str], None] = print) -> bool:
    """Turn the pipeline back on if `pause_for(reason)` paused it; returns whether it did."""
    cfg = cfg or get_config()
    marker = _marker(cfg, reason)
    if not marker.exists():
        return False
    marker.unlink()
    if running_settings(cfg) is None:
        return False
    resume_at_present(AirflowClient(cfg))
    progress(f"pipeline: flowing again after {reason}")
    return True
