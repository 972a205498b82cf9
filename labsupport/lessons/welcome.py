"""The first five minutes: the one block `./lab start` ends with — every place to look,
with its login, and which lesson to open first.

The learner sees this block before anything else, so it also says what zeros mean:
nothing flows until a lesson starts it.
"""

from __future__ import annotations

from labsupport.config import LabConfig

FIRST_LESSON = "00_doctor_and_map.ipynb"


def jupyter_url(server: dict, lesson: str = FIRST_LESSON) -> str:
    """The JupyterLab URL that opens ``lesson``, token included (``server`` as
    jupyter_server's ``list_running_servers`` describes it)."""
    base = server["url"].rstrip("/")
    return f"{base}/lab/tree/{lesson}" + (f"?token={server['token']}" if server.get("token") else "")


def running_jupyter(pid: int) -> dict | None:
    """The JupyterLab server process ``pid`` started, once it has written its runtime file."""
    from jupyter_server.serverapp import list_running_servers

    return next((s for s in list_running_servers() if s.get("pid") == pid), None)


def where_to_look(cfg: LabConfig, status: dict, jupyter: str) -> str:
    """The block: one line per place, each with the state it is in right now."""
    def line(name: str, url: str, service: str | None = None, note: str = "") -> str:
        st = status.get(service, {}) if service else {}
        if service and st.get("state") != "running":
            note = f"not running: ./lab up {service}"
        return f"  {name:14} {url}" + (f"   ({note})" if note else "")

    airflow = (status.get("airflow") or {}).get("extra") or {}
    login = f"login {airflow['username']} / {airflow['password']}" if airflow.get("username") else \
        "login printed by ./lab status once Airflow has started"
    host = cfg.host
    rows = [
        line("JupyterLab", jupyter),
        line("Airflow", cfg.airflow, "airflow", login),
        line("Pipeline view", f"http://{host}:{cfg.pipeline_view_port}", "pipeline-view"),
        line("Prometheus", f"{cfg.prometheus}/targets", "prometheus"),
        line("Spark UI", f"http://{host}:{cfg.spark_ui_port}", "stream", "the stream service's Spark job"),
        line("Events API", f"{cfg.events_api}/docs", "events-api"),
    ]
    if cfg.grafana:
        rows.append(line("Grafana", cfg.grafana, note="dashboards, anonymous read-only"))
    rule = "─" * 78
    return "\n".join([rule, "  streamlab is up. Where to look:", "", *rows, "",
                      f"  Start with lesson 00 ({FIRST_LESSON}: the JupyterLab link opens it), then the",
                      "  lessons in order; notebooks/README.md is the syllabus.",
                      "  Nothing flows until a lesson starts it: zeros on the dashboards, the pipeline",
                      "  view and the plots are expected until then. Lesson 02 turns the ingestion",
                      "  pipeline on; from a terminal: ./lab pipeline on|off (./lab status: is it flowing?).",
                      f"  Ctrl-C stops JupyterLab (its log: {cfg.paths.log('jupyterlab')}); ./lab down stops the stack.",
                      rule])
