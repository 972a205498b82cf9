"""The `lab` command's contract, without services: JSON shape and one-line errors."""

import json
import socket

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


def test_unknown_service_names_the_valid_ones(home):
    with pytest.raises(Exception) as err:
        runner.invoke(app, ["kill", "kafak"], catch_exceptions=False)
    assert "no service named 'kafak'" in str(err.value) and "kafka" in str(err.value)


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
