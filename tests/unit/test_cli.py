"""The `lab` command's contract, without services: JSON shape and one-line errors."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labsupport.cli import app
from labsupport.config import REPO_ROOT

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty lab home that shares the real jars (so versions are known)."""
    (tmp_path / "jars").symlink_to(REPO_ROOT / ".lab" / "jars")
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    return tmp_path


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "streamlab" in result.output


def test_status_json_has_every_service_with_required_keys(home):
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    st = json.loads(result.output)
    assert set(st) >= {"kafka", "cassandra", "prometheus"}
    for entry in st.values():
        assert set(entry) >= {"state", "pid", "ports", "healthy"}
        assert entry["state"] == "stopped" and entry["healthy"] is False


def test_status_says_a_running_layouts_note_once_not_once_per_node(home, monkeypatch):
    from labsupport import stack

    note = {"layout": "LAB_CASSANDRA_NODES=3 (this shell says 1)"}
    row = {"state": "running", "pid": 1, "ports": [9042], "healthy": True}
    monkeypatch.setattr(stack, "status", lambda *a, **k: {f"cassandra-{i}": {**row, "extra": note} for i in (1, 2, 3)})
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert result.output.count("this shell says 1") == 1, result.output
    assert result.output.count("cassandra-") == 3, result.output


def test_unknown_service_names_the_valid_ones(home):
    result = runner.invoke(app, ["kill", "kafak"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "no service named 'kafak'" in result.stderr and "kafka" in result.stderr


def test_busy_port_is_reported_with_remedy_and_nothing_starts(home, monkeypatch):
    from labsupport import stack
    from labsupport.errors import PortBusy

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("LAB_PROMETHEUS_PORT", str(port))
        with pytest.raises(PortBusy) as err:
            stack.up(["prometheus"])
    msg = str(err.value)
    assert f"port {port}" in msg and "LAB_PROMETHEUS_PORT" in msg
    assert not (home / "run" / "prometheus.json").exists()


@pytest.mark.parametrize("marker", [None, "cassandra 4.1.3"])
def test_foreign_data_dir_is_refused_and_kept(home, marker):
    from labsupport import stack
    from labsupport.errors import DataDirProblem

    data = home / "data" / "cassandra"
    data.mkdir(parents=True)
    (data / "precious.db").write_text("learner data")
    if marker:
        (data / ".lab-version").write_text(marker)
    with pytest.raises(DataDirProblem) as err:
        stack.up(["cassandra"])
    assert "--purge cassandra" in str(err.value)
    assert (marker or "not created by this lab") in str(err.value)
    assert (data / "precious.db").read_text() == "learner data"


def test_main_prints_one_line_and_exits_nonzero(home, monkeypatch, capsys):
    from labsupport import cli

    monkeypatch.setattr("sys.argv", ["lab", "logs", "nosuch"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lab: no service named 'nosuch'")


def test_missing_java_names_the_remedy():
    from labsupport.errors import MissingTool
    from labsupport.java import find_java_home

    with pytest.raises(MissingTool, match="LAB_JAVA_HOME=/nonexistent is not a JDK 17.*apt-get install"):
        find_java_home("/nonexistent")


# --- every verb fails with one line: cause — remedy, never a traceback -------------------


def one_line(text: str) -> str:
    """The single line a failure prints: ``lab: cause — remedy``."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("lab: ") and " — " in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, cause, remedy", [
    (["bench", "stream", "--rates", "1,x"], "'1,x' is not a comma-separated list of events/s", "lab bench --help"),
    (["bench", "stream", "--rates", "1000,-5"], "every rate must be a positive number", "lab bench --help"),
    (["bench", "stream", "--seconds", "0"], "Invalid value for '--seconds'", "lab bench --help"),
    (["bench", "strem"], "'strem' is not one of 'all', 'up', 'stream'", "lab bench --help"),
    (["up", "--backend", "dockr"], "'dockr' is not one of 'local', 'compose'", "lab up --help"),
    (["down", "--backend", "dockr"], "'dockr' is not one of 'local', 'compose'", "lab down --help"),
    (["logs", "nosuchservice"], "no service named 'nosuchservice'", "choose one of: kafka"),
    (["audit", "--since", "garbage", "--until", "2026-11-25T08:00"], "not an ISO time", "--since 2026-11-25T07:00"),
    (["audit"], "Missing option '--since'", "lab audit --help"),
    (["notebooks", "99"], "no lesson starts with '99'", "choose among 00, 01"),
    (["nosuchverb"], "No such command 'nosuchverb'", "lab --help"),
])
def test_bad_arguments_give_one_line_and_a_nonzero_exit(home, args, cause, remedy):
    result = runner.invoke(app, args, prog_name="lab")
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    line = one_line(result.stderr)
    assert cause in line and remedy in line, line
    assert result.stdout == ""


def test_workshop_build_into_an_unwritable_place_names_the_path(home, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["workshop", "build", str(blocker / "out")])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert str(blocker) in line and "may write there" in line


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_log(home, monkeypatch):
    from labsupport import stack

    def broken(service, lines):
        return {}["no such key"]

    monkeypatch.setattr(stack, "logs", broken)
    result = runner.invoke(app, ["logs", "kafka"])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    log = home / "logs" / "lab-cli.log"
    assert "unexpected KeyError" in line and str(log) in line
    assert "Traceback" in log.read_text() and "broken" in log.read_text()


def test_library_errors_of_a_stopped_service_are_explained(monkeypatch):
    """Real exceptions of the real libraries, as a stopped service raises them."""
    import httpx
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    from labsupport.cli import explain

    port = _closed_port()
    monkeypatch.setenv("LAB_EVENTS_API_PORT", str(port))
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(f"http://127.0.0.1:{port}/health")
    err = explain(refused.value)
    assert f"events-api at http://127.0.0.1:{port}/health is unreachable" in str(err)
    assert "./lab up events-api" in err.remedy
    for exc in (KafkaConnectionError(), KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9092")):
        assert "Kafka at" in str(explain(exc)) and "./lab up kafka" in explain(exc).remedy
    assert "check which service is down" in str(explain(ConnectionRefusedError(111, "Connection refused")))
    assert explain(ZeroDivisionError()) is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_real_lab_command_explains_stopped_services_in_one_line(tmp_path):
    """The console script as a learner runs it, against ports where nothing listens (the
    shared services keep running): Cassandra for `audit`, Prometheus for `lint-metrics`."""
    lab = Path(sys.executable).parent / "lab"
    port = _closed_port()
    cases = {
        "audit": (["audit", "--since", "2026-11-25T07:00", "--until", "2026-11-25T07:01", "--keyspace", "nosuch_ks"],
                  {"LAB_CASSANDRA_PORT": str(port)}, f"Cassandra at 127.0.0.1:{port} is unreachable",
                  "./lab up cassandra"),
        "lint-metrics": (["lint-metrics"], {"LAB_PROMETHEUS_PORT": str(port)},
                         f"Prometheus at http://127.0.0.1:{port} unreachable", "./lab up prometheus"),
    }
    procs = {name: subprocess.Popen([str(lab), *args], env={**os.environ, **env, "LAB_HOME": str(tmp_path)},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (args, env, _, _) in cases.items()}  # side by side: each waits on its driver
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        _, _, cause, remedy = cases[name]
        assert proc.returncode != 0, (name, out, err)
        assert "Traceback" not in out + err, (name, out, err)
        line = one_line(err)
        assert cause in line and remedy in line, (name, line)
