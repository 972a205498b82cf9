"""The `lab` command: thin verbs over labsupport's library functions.

Every failure prints one line naming cause and remedy and exits non-zero; no traceback.
That happens in one place, ``LabGroup.main``: LabError as it is, bad arguments as usage
errors, and a stopped service's exceptions (connection refused, Cassandra's
NoHostAvailable, Kafka's NoBrokersAvailable, httpx errors) translated by ``explain``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import traceback
from typing import List, Literal, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from labsupport import __version__, stack
from labsupport.config import REPO_ROOT, get_config
from labsupport.errors import LabError, ServiceFailed

#: JupyterLab without its news feed and update check: no request to the internet and no
#: "get notified?" pop-up over the lesson (stack/jupyterlab/overrides.json)
JUPYTERLAB_QUIET = ["--LabApp.news_url=None", f"--LabApp.app_settings_dir={REPO_ROOT / 'stack' / 'jupyterlab'}"]



def _loaded_class(module: str, name: str) -> type | None:
    """A library's exception class if that library is imported (else nothing can have
    raised it): the translation never imports Cassandra's or Kafka's driver itself."""
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def _raised(exc: BaseException, module: str, name: str) -> bool:
    cls = _loaded_class(module, name)
    return cls is not None and isinstance(exc, cls)


def _service_at(url: str) -> str | None:
    """The service (its `lab up` name) whose endpoint the URL is on."""
    for key, endpoint in get_config().endpoints().items():
        if endpoint and url.startswith(endpoint.rstrip("/")):
            return key.replace("_", "-")
    return None


def _start_remedy(service: str, env: str) -> str:
    return f"start it with `./lab up {service}` (see `./lab status`), or point {env} at a running one"


def explain(exc: BaseException) -> LabError | None:
    """The one-line LabError for an exception a learner can act on, None for a bug."""
    if isinstance(exc, LabError):
        return exc
    endpoints = get_config().endpoints()
    if _raised(exc, "cassandra.cluster", "NoHostAvailable"):
        first = next(iter(getattr(exc, "errors", {}).values()), exc)
        return LabError(f"Cassandra at {endpoints['cassandra']} is unreachable ({type(first).__name__})",
                        _start_remedy("cassandra", "LAB_CASSANDRA_HOSTS/LAB_CASSANDRA_PORT"))
    # kafka-python 3 has no NoBrokersAvailable: an unreachable bootstrap is a KafkaTimeoutError
    # ("Unable to bootstrap from …") or a KafkaConnectionError
    if _raised(exc, "kafka.errors", "KafkaTimeoutError") or _raised(exc, "kafka.errors", "KafkaConnectionError"):
        return LabError(f"Kafka at {endpoints['kafka']} is unreachable ({type(exc).__name__})",
                        _start_remedy("kafka", "LAB_KAFKA_BOOTSTRAP/LAB_KAFKA_PORT"))
    if _raised(exc, "kafka.errors", "KafkaError"):
        return LabError(f"Kafka at {endpoints['kafka']} failed: {type(exc).__name__}: {exc}",
                        "check `./lab status` and `./lab logs kafka`")
    if _raised(exc, "httpx", "HTTPError"):
        try:
            url = str(exc.request.url)
        except RuntimeError:  # an error raised before any request was made
            url = "?"
        name = _service_at(url)
        if _raised(exc, "httpx", "HTTPStatusError"):
            return LabError(f"{name or 'a service'} at {url} answered {exc.response.status_code}",
                            f"read its log: `./lab logs {name}`" if name else "check `./lab status`")
        return LabError(f"{name or 'a service'} at {url} is unreachable ({type(exc).__name__})",
                        f"start it with `./lab up {name}` (see `./lab status`)" if name else "check `./lab status`")
    if _raised(exc, "papermill.exceptions", "PapermillExecutionError"):
        return LabError(f"a lesson cell failed: {exc.ename}: {exc.evalue}",
                        "open the executed copy the line above names to see the cell")
    if isinstance(exc, ConnectionError):  # refused, reset, aborted: a service that is not there
        return LabError(f"connection failed: {exc}", "check which service is down with `./lab status`")
    if isinstance(exc, OSError) and exc.filename:
        return LabError(f"{exc.strerror or exc}: {exc.filename}",
                        "check that the path exists and that you may write there")
    return None


class LabGroup(TyperGroup):
    """The `lab` group, whose ``main`` is the one place failures become one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            rv = self._fail(LabError("aborted"), 1)
        except TyperException as exc:  # typer's (vendored) click errors: usage errors exit 2
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # `lab` alone: the help, as before
                typer.echo(ctx.get_help())
                rv = exc.exit_code
            else:  # a missing value, a typo, a wrong choice, a number out of range
                rv = self._fail(LabError(exc.format_message(), f"see `{ctx.command_path if ctx else 'lab'} --help`"),
                                exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the one place that decides how failures look
            if os.environ.get("LAB_DEBUG"):
                raise
            try:
                err = explain(exc) or self._bug(exc)
            except Exception:  # noqa: BLE001 - e.g. the config itself is what is broken
                err = self._bug(exc)
            rv = self._fail(err, 1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    @staticmethod
    def _fail(err: LabError, code: int) -> int:
        if isinstance(err, ServiceFailed) and err.log_tail:
            typer.echo(f"--- last lines of its log ---\n{err.log_tail}\n---", err=True)
        typer.echo(f"lab: {err}", err=True)
        return code

    @staticmethod
    def _bug(exc: Exception) -> LabError:
        """Not something the learner did: the traceback goes to a log, not over the screen."""
        text = "".join(traceback.format_exception(exc))
        try:
            log = get_config().paths.log("lab-cli")
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as out:
                out.write(text + "\n")
            where = f"the traceback is in {log}"
        except Exception:  # noqa: BLE001 - no home to write to (or no config): say how to see it
            where = "run it again with LAB_DEBUG=1 for the traceback"
        first = str(exc).splitlines()[0] if str(exc) else ""
        return LabError(f"unexpected {type(exc).__name__}: {first}", f"a bug in the lab; {where}")


app = typer.Typer(cls=LabGroup, add_completion=False, no_args_is_help=True,
                  help="streamlab: a real Kafka → Spark → Cassandra pipeline to learn on.")

#: where the services run; a typo is a usage error, never a silent fall-back to "local"
Backend = Literal["local", "compose"]
BACKEND = typer.Option("local", "--backend", help="local (processes) or compose (Docker).")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"streamlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    pass


@app.command()
def setup() -> None:
    """Install what the lab needs (packages, JVM jars, Airflow venv); idempotent."""
    from labsupport.stack.install import setup as do_setup

    do_setup()


@app.command()
def up(services: Optional[List[str]] = typer.Argument(None, help="Services to start (default: all)."),
       backend: Backend = BACKEND,
       wait: bool = typer.Option(True, "--wait/--no-wait",
                                 help="compose: poll each container's readiness (local services are always waited for).")) -> None:
    """Start services and wait until each is really ready."""
    if backend == "compose":
        from labsupport.stack import compose

        compose.up(names=services or None, wait=wait)
    else:
        stack.up(services or None)


@app.command()
def down(services: Optional[List[str]] = typer.Argument(None),
         purge: bool = typer.Option(False, "--purge", help="Also delete their data (irreversible)."),
         backend: Backend = BACKEND) -> None:
    """Stop services (their whole process groups); data is kept unless --purge."""
    if backend == "compose":
        from labsupport.stack import compose

        compose.down(purge=purge)
    else:
        stack.down(services or None, purge=purge)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """State, pid, ports and health of every service."""
    st = stack.status()
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    said: set[tuple[str, str]] = set()
    for name, s in st.items():
        health = "healthy" if s["healthy"] else "-"
        typer.echo(f"{name:12} {s['state']:8} pid={s['pid'] or '-':<8} ports={','.join(map(str, s['ports'])):24} {health}")
        for key, value in (s.get("extra") or {}).items():  # e.g. Airflow's generated login
            if (key, str(value)) not in said:  # a running layout's note is on each of its nodes: said once
                said.add((key, str(value)))
                typer.echo(f"{'':12} {key}: {value}")
    typer.echo("\nendpoints: " + ", ".join(f"{k}={v}" for k, v in get_config().endpoints().items() if v))
    from labsupport.lessons import pipeline as ingest_pipeline

    typer.echo(ingest_pipeline.state().describe())


@app.command()
def pipeline(switch: str = typer.Argument(..., metavar="on|off", help="on: the DAG flows into `events`; off: paused."),
             backfill_from: Optional[str] = typer.Option(
                 None, "--backfill-from", metavar="TIME",
                 help="With on: also run the missed windows since TIME (ISO-8601 UTC, or 90m/6h/2d ago), "
                      "with progress. Without it, on resumes at the present.")) -> None:
    """The production pipeline (the ingestion DAG publishing to `events`) on or off."""
    from labsupport.lessons import pipeline as ingest_pipeline

    if switch not in ("on", "off"):
        raise typer.BadParameter(f"{switch!r}: say on or off", param_hint="SWITCH")
    if switch == "off" and backfill_from:
        raise typer.BadParameter("--backfill-from goes with on", param_hint="--backfill-from")
    st = ingest_pipeline.switch_on(backfill_from=backfill_from, progress=typer.echo) if switch == "on" \
        else ingest_pipeline.switch_off(progress=typer.echo)
    typer.echo(st.describe())


@app.command()
def logs(service: str, lines: int = typer.Option(60, "-n", "--lines")) -> None:
    """The last lines of a service's log."""
    typer.echo(stack.logs(service, lines))


@app.command()
def kill(service: str) -> None:
    """SIGKILL a service's process group (fault injection: a crash, not a shutdown)."""
    if stack.kill(service):
        typer.echo(f"{service}: killed")
    else:
        typer.echo(f"{service}: was not running")


@app.command()
def restart(service: str) -> None:
    """Stop (gracefully) and start a service again."""
    stack.restart(service)


@app.command()
def doctor() -> None:
    """Preflight: Java, Maven, Prometheus, jars, ports, memory, disk."""
    from labsupport.stack.doctor import diagnose

    findings = diagnose()
    for f in findings:
        typer.echo(f.line())
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@app.command()
def start(no_browser: bool = typer.Option(True, help="Don't try to open a browser.")) -> None:
    """Set everything up, start the stack and open JupyterLab on the notebooks."""
    from labsupport.stack.install import setup as do_setup

    from labsupport.lessons import welcome
    from labsupport.waits import TimedOut, wait_for

    do_setup()
    stack.up()
    cfg = get_config()
    log = cfg.paths.log("jupyterlab")
    log.parent.mkdir(parents=True, exist_ok=True)
    # JupyterLab's own chatter goes to its log, so the block below is the last thing printed
    with log.open("ab") as out:
        proc = subprocess.Popen(jupyterlab_argv(cfg, no_browser), stdout=out, stderr=subprocess.STDOUT)
    try:
        server = wait_for(lambda: proc.poll() is not None or welcome.running_jupyter(proc.pid), timeout=120,
                          what="JupyterLab to start")
        if server is True:
            raise LabError(f"JupyterLab exited with code {proc.returncode}", f"read {log}")
        typer.echo(welcome.where_to_look(cfg, stack.status(), welcome.jupyter_url(server)))
        raise typer.Exit(proc.wait())
    except TimedOut as exc:
        proc.terminate()
        raise LabError("JupyterLab did not answer within 120 s", f"read {log}") from exc
    except KeyboardInterrupt:
        proc.terminate()
        raise typer.Exit(proc.wait())


def jupyterlab_argv(cfg, no_browser: bool) -> list[str]:
    """JupyterLab on 127.0.0.1 with its own generated token (printed in its URL): no
    option here may switch the token or the password off."""
    return [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.ip={cfg.host}", *JUPYTERLAB_QUIET,
            f"--ServerApp.root_dir={cfg.paths.repo / 'notebooks'}",
            *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else [])] + (["--no-browser"] if no_browser else [])


@app.command()
def audit(since: str = typer.Option(..., "--since", help="ISO time, UTC if no offset (2026-11-25T07:00)."),
          until: str = typer.Option(..., "--until", help="ISO time, exclusive."),
          keyspace: str = typer.Option("streamlab", "--keyspace"),
          seed: str = typer.Option("streamlab", "--seed", help="The events profile's seed."),
          rate: float = typer.Option(50.0, "--rate", help="The events profile's base rate (events/s)."),
          published_to: str = typer.Option(None, "--published-to", metavar="TOPIC",
                                           help="Audit the ids found in this topic instead of the profile's."),
          as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Exactly-once report for a time range: produced, landed, missing, published twice, duplicated, stored twice."""
    from datetime import datetime

    from labsupport.lessons.audit import audit as run_audit
    from labsupport.errors import LabError
    from labsupport.events import Profile

    try:
        start, end = datetime.fromisoformat(since), datetime.fromisoformat(until)
    except ValueError as exc:
        raise LabError(f"not an ISO time: {exc}", "write e.g. --since 2026-11-25T07:00 --until 2026-11-25T08:00")
    report = run_audit(start, end, Profile(rate=rate, seed=seed), keyspace=keyspace, published_to=published_to).as_dict()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key in ("produced", "landed", "missing", "published_twice", "duplicated", "under_counted", "stored_twice",
                "quarantined", "unexpected"):
        typer.echo(f"{key:16} {'unknown' if report[key] is None else report[key]}")
    typer.echo(f"{'layouts read':16} {', '.join(report['layouts'])}")
    for note in report["notes"]:
        typer.echo(f"note: {note}")
    typer.echo("clean" if report["clean"] else "NOT clean: events missing, published or stored twice, miscounted "
               "or quarantined (--json has each minute)")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Set everything up and run the whole test suite (extra args go to pytest)."""
    from labsupport.stack.install import install_test_tools, setup as do_setup

    do_setup()
    install_test_tools()
    cfg = get_config()
    rc = subprocess.call([sys.executable, "-m", "pytest", *ctx.args], cwd=cfg.paths.repo,
                         env={**os.environ, "LAB_TEST_RUN": "1"})
    if rc == 5:
        typer.echo("lab test: pytest collected no tests — that is a failure, not a pass", err=True)
    raise typer.Exit(rc)


def _rates(text: str | None) -> list[float] | None:
    """``--rates 1000,5000``: positive, finite events/s (the option's callback, so a bad
    list is a usage error before anything starts); None when not given."""
    if text is None:
        return None
    try:
        rates = [float(r) for r in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of events/s, e.g. 1000,5000") from None
    if not all(math.isfinite(r) and r > 0 for r in rates):
        raise typer.BadParameter(f"{text!r}: every rate must be a positive number of events/s")
    return [int(r) if r.is_integer() else r for r in rates]  # 1000, not 1000.0, in the progress lines


@app.command()
def bench(what: Literal["all", "up", "stream"] = typer.Argument(
              "all", help="all (every figure in one run: producers, sink ceiling, end to end, burst, recovery), "
                          "up (stack start-up) or stream (rate ladder)."),
          fast: bool = typer.Option(False, "--fast/--full", help="all: tiny sizes (a check, ~1.5 min on an idle "
                                                                  "machine) or full sizes (~15-20 min)"),
          runs: int = typer.Option(3, "--runs", "-n", min=1, help="up: how many cold/warm starts"),
          # typed str (what is typed), handed over as list[float] by the callback
          rates: Optional[str] = typer.Option(None, callback=_rates,
                                              help="stream, all: input rates, events/s (stream: 1000,2500,5000,10000,20000)"),
          seconds: Optional[float] = typer.Option(None, min=1.0, help="stream, all: how long each rate runs (stream: 30)"),
          trigger: str = typer.Option("", help="stream, all: trigger interval (default: the stream's setting)"),
          keep_going: bool = typer.Option(False, help="stream: run every rate even after one is not sustained"),
          ) -> None:
    """Measure speed goals (recorded with the machine described, not asserted)."""
    from labsupport.bench import startup as benchmarks

    if what == "up":
        typer.echo(json.dumps(benchmarks.bench_up(runs), indent=2))
    elif what == "stream":
        from labsupport.bench import stream as stream_bench

        result = stream_bench.bench_stream(rates or stream_bench.DEFAULT_RATES, seconds or 30.0, trigger or None,
                                           stop_when_behind=not keep_going)
        typer.echo(json.dumps(result, indent=2))
        typer.echo(stream_bench.table(result))
        typer.echo(stream_bench.cpu_table(result))
    else:
        from labsupport.bench import report, suite

        sizes = suite.FAST if fast else suite.FULL
        overrides = {"rates": tuple(rates) if rates else None, "rung_s": seconds, "trigger": trigger or None}
        sizes = sizes.replace(**{k: v for k, v in overrides.items() if v is not None})
        result, folder = suite.run(sizes, mode="fast" if fast else "full")
        typer.echo(report.markdown(result))
        if not result["complete"]:
            first = next(p for kind in ("failed", "missing", "inconsistent") for p in result["problems"][kind])
            raise LabError(f"the bench is incomplete ({first})", f"read {folder}/report.md and the log above")


@app.command("lint-metrics")
def lint_metrics(as_json: bool = typer.Option(False, "--json")) -> None:
    """Check every dashboard query against the series Prometheus really has."""
    from labsupport.observe import lint

    findings = lint.lint()
    if as_json:
        typer.echo(json.dumps(lint.as_dicts(findings), indent=2))
    else:
        for f in findings:
            typer.echo(f.line())
        typer.echo(f"{len(findings)} dashboard queries return no data" if findings else "every dashboard query has data")
    if findings:
        raise typer.Exit(1)


@app.command()
def notebooks(fast: bool = typer.Option(True, "--fast/--full", help="CI-sized runs (default) or full-size."),
              only: Optional[List[str]] = typer.Argument(None, help="Notebook name prefixes, e.g. 02 03."),
              html: Optional[str] = typer.Option(None, "--html", metavar="DIR",
                                                 help="Also render each executed lesson to DIR/NN_….html.")) -> None:
    """Run the lesson notebooks in order with papermill (what the notebook tests do)."""
    from pathlib import Path

    from labsupport.lessons import notebook_runner

    for path in _chosen_lessons(only):
        typer.echo(f"{path.name}: running ({'fast' if fast else 'full'} mode)")
        out, took = notebook_runner.run(path, fast=fast)
        typer.echo(f"{path.name}: ok in {took:.0f}s → {out}")
        if html:
            typer.echo(f"{path.name}: page {notebook_runner.to_html(out, Path(html))}")


def _chosen_lessons(only: Optional[List[str]]) -> list:
    """The lesson notebooks whose names start with one of ``only`` (all without it)."""
    from labsupport.lessons import notebook_runner

    lessons = notebook_runner.lessons()
    unknown = [o for o in only or [] if not any(p.name.startswith(o) for p in lessons)]
    if unknown:
        raise LabError(f"no lesson starts with {', '.join(map(repr, unknown))}",
                       f"choose among {', '.join(p.name[:2] for p in lessons)}")
    return [p for p in lessons if not only or any(p.name.startswith(o) for o in only)]


workshop_app = typer.Typer(help="Workshop material generated from the notebooks.", no_args_is_help=True)
app.add_typer(workshop_app, name="workshop")


@workshop_app.command("build")
def workshop_build(dest: str = typer.Argument("build/exercises")) -> None:
    """Write student versions (solutions stripped) of every lesson into DEST."""
    from pathlib import Path

    from labsupport.lessons import workshop

    for path in workshop.build(Path(dest)):
        typer.echo(f"wrote {path}")


@workshop_app.command("rehearse")
def workshop_rehearse(fast: bool = typer.Option(True, "--fast/--full", help="CI-sized runs (default) or full-size."),
                      only: Optional[List[str]] = typer.Argument(None, help="Lesson prefixes, e.g. 03 08.")) -> None:
    """Go through the student copies as a learner does: each must stop at its exercises with
    the hint, and with each solution loaded run on to its checks (the day-before check of a
    room's machine; `lab test` does the same for every lesson)."""
    from nbclient.exceptions import CellExecutionError

    from labsupport.config import get_config
    from labsupport.lessons import notebook_runner, workshop

    chosen = _chosen_lessons(only)
    home = get_config().paths.home
    copies, runs = home / "workshop-rehearsal", home / "student-runs"
    workshop.build(copies)
    for path in chosen:
        typer.echo(f"{path.name}: the student copy, as a learner ({'fast' if fast else 'full'} mode)")
        try:
            run = notebook_runner.run_as_learner(copies / path.name, fast=fast, out_dir=runs)
        except CellExecutionError as err:
            raise LabError(f"{path.name}: {err.ename}: {err.evalue[:300]}",
                           f"the executed copy shows where: {runs / path.name}") from None
        for stop in run.stops:
            typer.echo(f"  stopped after {stop.seconds:.0f}s: {stop.evalue[:160]} — solution loaded")
        typer.echo(f"{path.name}: ok in {run.seconds:.0f}s → {run.executed}")


@workshop_app.command("branches")
def workshop_branches() -> None:
    """(Re)create branches workshop/solutions (as is) and workshop/exercises (stripped) from HEAD."""
    from labsupport.lessons import workshop

    workshop.branches()
    typer.echo("branches workshop/solutions and workshop/exercises updated")


@workshop_app.command("syllabus")
def workshop_syllabus(check: bool = typer.Option(False, "--check", help="Only say whether it is up to date.")) -> None:
    """Regenerate notebooks/README.md (the syllabus) from the lessons' headers and exercise metadata."""
    from labsupport.lessons import syllabus

    target = syllabus.NOTEBOOKS / "README.md"
    if check:
        if target.read_text() != syllabus.render():
            raise LabError(f"{target} is out of date", "run ./lab workshop syllabus")
        typer.echo(f"{target}: up to date")
        return
    typer.echo(f"wrote {syllabus.write()}")


def _learner_list(learners: str | None, learners_file: str | None) -> list[str] | None:
    """The learners named by --learners (comma-separated) and --learners-file (one a line,
    '#' comments), in order, each once, lowercased as JupyterHub names its users (so 'Alice'
    and 'alice' are one learner, not two namespaces); None when neither was given."""
    from pathlib import Path

    if learners is None and learners_file is None:
        return None
    names = [n.strip() for n in (learners or "").split(",")]
    if learners_file:
        try:
            lines = Path(learners_file).read_text().splitlines()
        except OSError as exc:
            raise LabError(f"cannot read the learners file {learners_file}: {exc.strerror}",
                           "give a file with one learner name a line") from None
        names += [ln.split("#", 1)[0].strip() for ln in lines]
    names = list(dict.fromkeys(n.lower() for n in names if n))
    if not names:
        raise LabError("the learner list is empty", "name them: --learners alice,bob or --learners-file FILE")
    return names


@app.command()
def hub(action: Literal["start", "stop", "status"] = typer.Argument("start", help="start (default), stop or status."),
        learners: Optional[str] = typer.Option(None, "--learners", metavar="A,B",
                                               help="The room's learners (their hub user names), comma-separated."),
        learners_file: Optional[str] = typer.Option(None, "--learners-file", metavar="FILE",
                                                    help="The learners, one a line ('#' comments)."),
        open_: Optional[Literal["exercises", "lessons"]] = typer.Option(
            None, "--open", help="What each learner's server opens: their own copy of the student copies "
                                 "(exercises, the default) or of the lessons with their solutions."),
        ip: Optional[str] = typer.Option(None, "--ip", help="Bind the hub's public port here (default 127.0.0.1); "
                                                           "an address that is not loopback needs TLS."),
        ssl_cert: Optional[str] = typer.Option(None, "--ssl-cert", metavar="PEM", help="TLS certificate."),
        ssl_key: Optional[str] = typer.Option(None, "--ssl-key", metavar="PEM", help="TLS private key."),
        mem_limit: Optional[str] = typer.Option(None, "--mem-limit", metavar="SIZE",
                                                help="Per learner, e.g. 2G (enforced by container/systemd spawners only)."),
        cpu_limit: Optional[float] = typer.Option(None, "--cpu-limit", min=0.0,
                                                  help="Cores per learner (enforced by container/systemd spawners only).")) -> None:
    """JupyterHub for a room on one server: a JupyterLab per learner, each in its own namespace."""
    import dataclasses

    from labsupport.stack import services

    svc = services.service("hub")
    if action == "stop":
        stack.down(["hub"])
        return
    if action == "status":
        row = svc.status()
        typer.echo(f"hub {row['state']} {'healthy' if row['healthy'] else '-'}")
        for key, value in (row.get("extra") or {}).items():
            typer.echo(f"  {key}: {value}")
        return
    room, changes = svc.room(), {}
    names = _learner_list(learners, learners_file)
    if names is not None:
        changes["learners"] = names
    if open_ or not room.material:
        changes["material"] = str(_room_material(open_ or "exercises", svc.data_dir))
    given = {"ip": ip, "ssl_cert": ssl_cert, "ssl_key": ssl_key, "mem_limit": mem_limit, "cpu_limit": cpu_limit}
    changes.update({k: v for k, v in given.items() if v is not None})
    svc.save_room(dataclasses.replace(room, **changes))
    stack.up(["hub"])
    room = svc.room()
    typer.echo(f"hub: {svc.url} for {', '.join(room.learners)}; each opens {room.material}")
    typer.echo(f"hub: the workshop password is {svc.password_file.read_text().strip()} "
               f"(kept in {svc.password_file}, owner-readable); `lab hub stop` ends the room")


def _room_material(choice: str, hub_data: "Path") -> "Path":
    """The folder every learner gets a copy of: the student copies, built now (so they
    match the lessons of this checkout), or the lessons themselves."""
    from labsupport.lessons import workshop

    if choice == "lessons":
        return get_config().paths.repo / "notebooks"
    dest = hub_data / "exercises"
    workshop.build(dest)
    return dest


@app.command()
def lock() -> None:
    """Recompile requirements/*.lock from requirements/*.in (maintainers)."""
    from labsupport.stack.install import uv_binary

    repo = get_config().paths.repo / "requirements"
    for name in ("lab", "airflow"):
        # relative paths, so the command recorded in the lock's header is the same on every machine
        subprocess.check_call([uv_binary(), "pip", "compile", "-q", "--python-version", "3.11",
                               f"requirements/{name}.in", "-o", f"requirements/{name}.lock"], cwd=repo.parent)


def main() -> None:
    app()  # LabGroup.main prints any failure as one line and exits non-zero
