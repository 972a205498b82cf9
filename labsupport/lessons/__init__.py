"""What the lesson notebooks stand on: `reset_to(n)` (the state lesson n expects),
sandboxes (a lesson's own topic, keyspace, stream and DAG settings, and the way back),
a paced feeder of known events, the exactly-once audit, reads, direct writes, the
workshop's student copies and the notebook runner.

    from labsupport import lessons
    lessons.reset_to(4)
    svc = lessons.stream_sandbox("lesson04", checkpoint="ephemeral")
"""

from labsupport.lessons.audit import audit, topic_windows
from labsupport.lessons.feed import Feeder
from labsupport.lessons.reset import STEPS, reset_to
from labsupport.lessons.sandboxes import (forget_ingest_runs, ingest_sandbox, restart_airflow, restore_stream,
                                          stream_sandbox)

__all__ = ["reset_to", "STEPS", "stream_sandbox", "restore_stream", "ingest_sandbox", "restart_airflow",
           "forget_ingest_runs", "Feeder", "audit", "topic_windows"]
