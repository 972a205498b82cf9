"""Everything the ingestion DAG can vary, in one frozen object, as `StreamSettings` is
for the stream.

The DAG runs in Airflow's own virtualenv and never imports labsupport: it reads these
fields as ``LAB_INGEST_<FIELD>`` variables from the environment the airflow service
starts it with (``dags/ingest_events.py::_setting``). The defaults here are the DAG's
own defaults; a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from labsupport.config import EnvSettings
from labsupport.errors import LabError

PREFIX = "LAB_INGEST_"


class BadIngestSetting(LabError):
    """A LAB_INGEST_* value or an IngestSettings field that cannot work."""


@dataclass(frozen=True)
class IngestSettings(EnvSettings):
    ENV_PREFIX, ENV_ERROR = PREFIX, BadIngestSetting

    #: the DAG's start_date (ISO-8601 UTC); empty = the lab's first Airflow start
    start_date: str = ""
    #: cron expression of the data intervals (one API window each)
    schedule: str = "* * * * *"
    #: run every missed interval since start_date when unpaused (lessons and tests, whose
    #: start_date is minutes back); the lab's pipeline resumes at the present instead, and
    #: a gap is filled only by an explicit backfill (`lab pipeline on --backfill-from`)
    catchup: bool = False
    topic: str = "events"
    retries: int = 4
    retry_delay_s: float = 20.0
    max_retry_delay_s: float = 600.0
    #: in-task attempts per API page before the task fails (and Airflow retries it)
    http_attempts: int = 3
    http_timeout_s: float = 10.0
    page_size: int = 5000

    def __post_init__(self):
        if self.retries < 0 or self.http_attempts < 1 or self.page_size < 1:
            raise BadIngestSetting(f"retries={self.retries}, http_attempts={self.http_attempts}, "
                                   f"page_size={self.page_size} cannot work",
                                   "use retries >= 0, http_attempts >= 1 and page_size >= 1")
        if not 0 < self.retry_delay_s <= self.max_retry_delay_s:
            raise BadIngestSetting(f"retry_delay_s={self.retry_delay_s} must be > 0 and <= "
                                   f"max_retry_delay_s={self.max_retry_delay_s}", "fix the two delays")

    def to_env(self) -> dict[str, str]:
        """The variables the DAG reads; an empty start date is left to the service."""
        env = super().to_env()
        if not self.start_date:
            env.pop(f"{PREFIX}START_DATE")
        return env
