"""Named errors. Every one carries a single line naming the cause and the remedy, which
is all the `lab` command prints (no traceback) before exiting non-zero."""


class LabError(Exception):
    """Base class: ``str(err)`` is the one-line cause + remedy shown to the learner."""

    def __init__(self, cause: str, remedy: str = ""):
        self.cause = cause
        self.remedy = remedy
        super().__init__(f"{cause} — {remedy}" if remedy else cause)


class MissingTool(LabError):
    """Java 17, Maven, Prometheus or a venv is not installed."""


class PortBusy(LabError):
    """A port a service needs is taken by some other process."""


class DataDirProblem(LabError):
    """A service's data dir is from another version or is not the lab's."""


class ServiceFailed(LabError):
    """A service exited or never became ready; carries the tail of its log."""

    def __init__(self, cause: str, remedy: str = "", log_tail: str = ""):
        super().__init__(cause, remedy)
        self.log_tail = log_tail


class UnknownService(LabError):
    """A service name the lab does not manage."""
