"""Running the lab's services: the local backend's processes (`services/`, `procs`,
`readiness`), the compose backend (`compose`), installing (`install`, `doctor`).

The notebooks' and the CLI's one-liners live in `control` and are re-exported here:

    from labsupport import stack
    stack.up()                 # every service, waits until each is ready
    stack.kill("cassandra")    # SIGKILL its process group (fault injection)
"""

from labsupport.stack import compose  # noqa: F401  (registers the compose backend's services)
from labsupport.stack.control import down, kill, logs, restart, status, up

__all__ = ["up", "down", "kill", "restart", "status", "logs"]
