"""`lab hub`'s JupyterHub configuration (stack/hub/jupyterhub_config.py) loaded the way
JupyterHub loads it, from settings rendered for a room: what it binds, who may log in,
what each learner's server gets. The hub itself runs in tests/integration/test_hub.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from traitlets.config.loader import PyFileConfigLoader

from labsupport.config import REPO_ROOT, LabConfig
from labsupport.errors import LabError
from labsupport.namespace import slug
from labsupport.stack.services.hub import Room


def _settings(tmp_path, **changes) -> dict:
    material = tmp_path / "material"
    (material / "sub").mkdir(parents=True)
    (material / "03_the_stream.ipynb").write_text("{}")
    (tmp_path / "pw").write_text("a-workshop-password\n")
    (tmp_path / "tok").write_text("t" * 40 + "\n")
    return {"data_dir": str(tmp_path / "data"), "run_dir": str(tmp_path), "homes": str(tmp_path / "homes"),
            "bind_url": "http://127.0.0.1:8100", "hub_bind_url": "http://127.0.0.1:8101",
            "proxy_command": "/x/configurable-http-proxy", "proxy_api_url": "http://127.0.0.1:8102",
            "ssl_cert": "", "ssl_key": "", "password_file": str(tmp_path / "pw"), "token_file": str(tmp_path / "tok"),
            "service": "lab-instructor", "learners": ["alice", "bob.smith"], "material": str(material),
            "singleuser": "/venv/bin/jupyterhub-singleuser", "environment": {"LAB_HOME": "/lab", "PYTHONPATH": "/r"},
            "env_keep": ["LAB_PROCESS_TAG"], "args": ["--ServerApp.allow_root=True"], "mem_limit": "2G", "cpu_limit": 1.0, **changes}


def _load(tmp_path, monkeypatch, **changes):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(_settings(tmp_path, **changes)))
    monkeypatch.setenv("LAB_HUB_SETTINGS", str(path))
    return PyFileConfigLoader("jupyterhub_config.py", path=str(REPO_ROOT / "stack" / "hub")).load_config()


def test_the_hub_listens_where_the_lab_says_and_admits_only_the_room(tmp_path, monkeypatch):
    c = _load(tmp_path, monkeypatch)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8100"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8101"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8102"
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.SharedPasswordAuthenticator.user_password == "a-workshop-password"
    assert c.Authenticator.allowed_users == {"alice", "bob.smith"}
    assert c.JupyterHub.services == [{"name": "lab-instructor", "api_token": "t" * 40}]
    assert "ssl_cert" not in c.JupyterHub


def test_each_learner_server_gets_its_own_learner_folder_and_the_limits(tmp_path, monkeypatch):
    c = _load(tmp_path, monkeypatch)
    env = c.Spawner.environment
    spawner = SimpleNamespace(user=SimpleNamespace(name="bob.smith"), home_dir="", notebook_dir="")
    assert env["LAB_LEARNER"](spawner) == "bob.smith"
    assert env["LAB_HOME"] == "/lab" and "LAB_PROCESS_TAG" in c.Spawner.env_keep
    assert (c.Spawner.mem_limit, c.Spawner.cpu_limit, c.Spawner.ip) == ("2G", 1.0, "127.0.0.1")
    assert c.Spawner.args == ["--ServerApp.allow_root=True"]

    c.Spawner.pre_spawn_hook(spawner)
    mine = tmp_path / "homes" / slug("bob.smith") / "material"
    assert spawner.home_dir == str(mine.parent) and spawner.notebook_dir == str(mine)
    (mine / "03_the_stream.ipynb").write_text('{"edited": true}')
    c.Spawner.pre_spawn_hook(spawner)  # a restarted server keeps the learner's edits
    assert (mine / "03_the_stream.ipynb").read_text() == '{"edited": true}'


def test_the_room_refuses_what_would_hurt_it(tmp_path):
    with pytest.raises(LabError, match="clear text without TLS"):
        Room(learners=["alice"], ip="10.0.0.5")
    with pytest.raises(LabError, match="would share the namespace"):
        Room(learners=["alice", "alice"])
    with pytest.raises(LabError, match="not an IP address"):
        Room(learners=["alice"], ip="example.org")
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert Room(learners=["alice"], ip="10.0.0.5", ssl_cert=str(cert), ssl_key=str(cert)).scheme == "https"


def test_the_hub_is_optional_and_on_ports_of_its_own(tmp_path):
    from labsupport.stack import services

    cfg = LabConfig.from_env({}, home=tmp_path)
    assert "hub" in services.names(cfg) and "hub" not in services.default_names(cfg)
    ports = services.service("hub", cfg).ports().values()
    others = {p for n in services.names(cfg) if n != "hub" for p in services.service(n, cfg).ports().values()}
    assert not set(ports) & (others | {cfg.stream_metrics_port, cfg.spark_ui_port})
