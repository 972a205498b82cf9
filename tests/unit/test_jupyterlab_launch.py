"""`lab start` launches JupyterLab on 127.0.0.1 with its own token: nothing in the
command line it builds may switch the token or the password off."""

from __future__ import annotations

import pytest

from labsupport.cli import jupyterlab_argv
from labsupport.config import LabConfig

#: options that would open JupyterLab to anyone who can reach the port
WEAKENING = ("token", "password", "disable_check_xsrf", "allow_origin", "allow_remote_access")


@pytest.mark.parametrize("no_browser", [True, False])
def test_jupyterlab_keeps_its_token_and_binds_loopback(no_browser):
    argv = jupyterlab_argv(LabConfig(), no_browser)
    assert argv[1:4] == ["-m", "jupyter", "lab"]
    assert "--ServerApp.ip=127.0.0.1" in argv
    weakened = [a for a in argv if any(w in a.lower() for w in WEAKENING)]
    assert weakened == []
    assert ("--no-browser" in argv) is no_browser
