"""``python -m labsupport.stream``: the job as a long-running process (service `stream`).

Settings come from ``LAB_STREAM_*`` variables, the endpoints from ``LAB_*``. SIGTERM
stops the query between batches; SIGKILL (``lab kill stream``) is the crash the
checkpoint recovers from.
"""

from __future__ import annotations

import logging
import signal
import sys

from labsupport.config import get_config
from labsupport.errors import LabError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    for noisy in ("kafka", "cassandra", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from labsupport.stream.job import StreamJob
    from labsupport.stream.settings import StreamSettings

    cfg = get_config()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        settings = StreamSettings.from_env()
        job = StreamJob(cfg, settings, serve_ui=True)  # the UI port Prometheus scrapes
        job.metrics.serve(cfg.host, cfg.stream_metrics_port)
        logging.getLogger("labsupport.stream").info(
            "stream %s: topic %s -> keyspace %s, checkpoint %s, metrics on %s:%s", settings.query_name,
            settings.topic, settings.keyspace, job.checkpoint_location, cfg.host, cfg.stream_metrics_port)
        job.run_forever(should_stop=lambda: bool(stopping))
    except LabError as exc:
        print(f"stream: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
