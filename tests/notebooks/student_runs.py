"""What a run of a student copy must show, shared by the student-copy tests and, on the
``workshop/exercises`` branch (where the lessons *are* student copies), by the lessons'
own runs: it stops at its first unsolved exercise with exactly

    ExerciseNotDone: Exercise NN.k is not done yet: <hint>

raised in that exercise's own cell, and every code cell before it ran without error."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import httpx
import nbformat

from labsupport import lessons
from labsupport.config import get_config
from labsupport.lessons import notebook_runner
from labsupport.lessons.workshop import Exercise
from labsupport.stack import services


@contextmanager
def lab_put_back(lab_stack, lesson: int):
    """A student run never reaches its lesson's tidy-up and checks cells: what those would
    have restored is restored here — the events API's profile (lesson 02 switches its
    bursts off), the default stream service (lessons 04 on run sandboxed streams in its
    place), and no service left running that was not running before."""
    cfg = get_config()
    before = services.running()
    api = httpx.Client(base_url=cfg.events_api, timeout=10)
    profile = api.get("/profile").json() if "events-api" in before else None
    try:
        yield
    finally:
        if profile is not None:
            api.put("/profile", json=profile)
        back_to_configured_kafka(cfg)  # lesson 09 stops at its exercise on the cluster
        back_to_configured_cassandra(cfg)  # and lesson 10 at its exercises on the ring
        if lesson >= 4 or services.service("stream", cfg).running() != ("stream" in before):
            lessons.restore_stream(start="stream" in before)
        extra = [n for n in services.running() if n not in before]
        if extra:  # an empty list would mean every service
            lab_stack.down(extra)


def back_to_configured_kafka(cfg) -> None:
    """Kafka in the layout the lab is configured for: a run that stopped inside lesson 09
    (its exercise, or a failure) leaves the three-broker cluster running, and every lesson
    after it would be refused the one broker's ports."""
    from labsupport.lessons.replication import brokers_of, running_kafka, use_kafka_brokers

    if brokers_of(running_kafka(cfg), cfg) not in (None, cfg.kafka_brokers):
        use_kafka_brokers(cfg.kafka_brokers, cfg)


def back_to_configured_cassandra(cfg) -> None:
    """Cassandra in the layout the lab is configured for: a run that stopped inside lesson
    10 (its exercise, or a failure) leaves the ring running on the one node's ports."""
    from labsupport.lessons.ring import running_nodes, use_cassandra_nodes

    if running_nodes(cfg) not in (None, cfg.cassandra_nodes):
        use_cassandra_nodes(cfg.cassandra_nodes, cfg)


def assert_stops_at(path: Path, exercise: Exercise, out_dir: Path | None = None) -> notebook_runner.Stop:
    """Run the student copy at ``path`` (fast mode) and check it stopped exactly at ``exercise``."""
    stop = notebook_runner.run_until_error(path, fast=True, out_dir=out_dir)
    assert stop is not None, f"{path.name}: the student copy ran to the end past exercise {exercise.id}"
    return assert_stopped_at(path, exercise, stop)


def assert_stopped_at(path: Path, exercise: Exercise, stop: notebook_runner.Stop) -> notebook_runner.Stop:
    """``stop`` is exactly ``exercise``'s: its message with the hint, raised in its own
    cell, every code cell of the copy at ``path`` before it executed."""
    student = nbformat.read(path, as_version=4)
    assert (stop.ename, stop.evalue) == ("ExerciseNotDone",
                                         f"Exercise {exercise.id} is not done yet: {exercise.hint}"), \
        f"{path.name} stopped with {stop.ename}: {stop.evalue[:300]}"
    assert stop.cell_id == student.cells[exercise.cell].id, f"stopped in cell {stop.cell_id}, not the exercise's"
    executed = {c.id: c for c in nbformat.read(stop.executed, as_version=4).cells}
    before = [c for c in student.cells[:exercise.cell] if c.cell_type == "code"]
    assert all(executed[c.id].get("execution_count") for c in before), "a cell before the exercise did not run"
    print(f"{path.name}: stopped at exercise {exercise.id} after {stop.seconds:.0f}s")
    return stop
