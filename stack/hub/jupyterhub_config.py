"""JupyterHub's configuration for `lab hub`: one JupyterLab per learner on one server.

Static on purpose: everything that varies (ports, learners, limits, paths) comes from the
settings file the `hub` service renders from the lab config (labsupport.stack.services.hub),
named by LAB_HUB_SETTINGS. Secrets are read from owner-only files in the hub's data dir,
never from this file or git.
"""

import json
import os
import shutil
from pathlib import Path

from labsupport.namespace import LEARNER_ENV, slug

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

settings = json.loads(Path(os.environ["LAB_HUB_SETTINGS"]).read_text())
data = Path(settings["data_dir"])

# ---- where it listens: the public side on loopback unless the instructor chose otherwise
c.JupyterHub.bind_url = settings["bind_url"]
c.JupyterHub.hub_bind_url = settings["hub_bind_url"]
if settings["ssl_cert"]:
    c.JupyterHub.ssl_cert = settings["ssl_cert"]
    c.JupyterHub.ssl_key = settings["ssl_key"]
c.ConfigurableHTTPProxy.command = [settings["proxy_command"]]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api_url"]
c.ConfigurableHTTPProxy.pid_file = str(Path(settings["run_dir"]) / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True  # the hub's SIGTERM (`lab down hub`) stops every learner's server

# ---- who may log in: the instructor's learners, with the workshop's shared password
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = Path(settings["password_file"]).read_text().strip()
c.Authenticator.allowed_users = set(settings["learners"])

# ---- the instructor's (and the tests') API access: a service token, no admin password
c.JupyterHub.services = [{"name": settings["service"],
                          "api_token": Path(settings["token_file"]).read_text().strip()}]
c.JupyterHub.load_roles = [{"name": settings["service"], "services": [settings["service"]],
                            "scopes": ["admin:users", "admin:servers", "access:servers"]}]

# ---- each learner's server: the lab's venv and config, their own namespace and folder
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.Spawner.cmd = [settings["singleuser"]]
c.Spawner.args = settings["args"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.env_keep = ["LANG", "LC_ALL", "PATH", *settings["env_keep"]]
c.Spawner.environment = {**settings["environment"], LEARNER_ENV: lambda spawner: spawner.user.name}
c.Spawner.mem_limit = settings["mem_limit"] or None
c.Spawner.cpu_limit = settings["cpu_limit"] or None
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def learner_folder(spawner):
    """The learner's home (named by their namespace slug: a user name may hold any
    character) with their own copy of the material, made once: never overwritten, so a
    restarted server finds the learner's edits."""
    home = Path(settings["homes"]) / slug(spawner.user.name)
    material = Path(settings["material"])
    mine = home / material.name
    if not mine.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(material, mine, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    spawner.home_dir = str(home)
    spawner.notebook_dir = str(mine)


c.Spawner.pre_spawn_hook = learner_folder
