"""A steady stream of known events while a lesson breaks things.

`Feeder` publishes, in a background thread, the deterministic events (`labsupport.events`)
of each second just after it ends, so the audit later knows exactly what was produced
and when. Give each lesson its own ``Profile(seed=...)``: ids then never collide with
another lesson's, a test's or an earlier run's events.

    with Feeder(topic, Profile(seed="lesson04", burst_every=0)) as feed:
        ...                         # kill things
        since, until = feed.stop()  # the half-open range of seconds published
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from labsupport.config import LabConfig, get_config
from labsupport.errors import LabError
from labsupport.events import Profile, events_between
from labsupport.ingest import producers
from labsupport.times import utc


class FeederFailed(LabError):
    """The feeder's producer failed (Kafka refused or was unreachable)."""


class Feeder:
    def __init__(self, topic: str, profile: Profile, cfg: LabConfig | None = None):
        self.topic, self.profile = topic, profile
        self.cfg = cfg or get_config()
        self.first = int(time.time()) + 1
        self.next = self.first
        self.published = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"feeder-{topic}", daemon=True)

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    __enter__ = start

    def _run(self) -> None:
        producer = producers.make_producer(self.cfg)
        try:
            while not self._stop.is_set():
                now = int(time.time())
                if now > self.next:
                    batch = list(events_between(self.next, now, self.profile))
                    producers.publish(batch, self.topic, producer=producer)
                    self.published += len(batch)
                    self.next = now
                self._stop.wait(0.2)
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            producer.close(timeout=10)

    def stop(self) -> tuple[datetime, datetime]:
        """Stop publishing; returns the half-open range of seconds published."""
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise FeederFailed(f"the feeder of {self.topic!r} failed: {self.error!r}",
                               "check that Kafka is up (`lab status kafka`)")
        return utc(self.first), utc(self.next)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
