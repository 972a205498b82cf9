"""Lesson 03: the learner writes the streaming query and the batch function.

The learner's query parses with ``from_json`` and the contract's schema, then calls the
service's own ``validate``: it must give the rows ``parse`` (the service's path) gives, on
every hostile record of the validation suite. The lesson's exercise cells must hold the
query's API calls in the solution and not in the student copy."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labsupport.events import EVENT_FIELDS
from labsupport.lessons.workshop import exercises, student_version
from labsupport.stream.settings import StreamSettings
from labsupport.stream.validation import EVENT_COLUMN, event_schema, parse, validate
# every hostile record, with its reason, and the fixtures that hand them over as Kafka rows
from tests.unit.test_stream_validation import CASES, kafka_rows, spark  # noqa: F401

LESSON = Path(__file__).resolve().parents[2] / "notebooks" / "03_the_stream.ipynb"
QUERY_API = ("readStream", "foreachBatch", "checkpointLocation")


def test_the_schema_is_the_contract():
    schema = event_schema()
    assert [f.name for f in schema.fields] == [f.name for f in EVENT_FIELDS]
    kinds = {f.name: f.kind for f in EVENT_FIELDS}
    assert {f.name: f.dataType.simpleString() for f in schema.fields} == {
        name: "double" if kind == "number" else "string" for name, kind in kinds.items()}


def test_the_learners_from_json_then_validate_gives_the_services_rows(kafka_rows):
    from pyspark.sql import functions as F

    settings = StreamSettings()
    learner = validate(kafka_rows.select("*", F.from_json(F.col("value").cast("string"), event_schema())
                                         .alias("event")), settings)
    service = parse(kafka_rows, settings)
    theirs = {r.kafka_offset: r.asDict() for r in service.collect()}
    assert {r.kafka_offset: r.asDict() for r in learner.collect()} == theirs
    good = [r for r in theirs.values() if r["reason"] is None]
    assert good and all(r["event_id"] and r["source_id"] and r["value"] is not None for r in good)


def test_validate_says_what_is_missing_without_the_parsed_column(kafka_rows):
    with pytest.raises(ValueError, match=EVENT_COLUMN):
        validate(kafka_rows, StreamSettings())


def _exercise_code(nb) -> dict[str, str]:
    return {ex.id: nb.cells[ex.cell].source for ex in exercises(nb, LESSON.name)}


def test_the_solution_writes_the_query_and_the_student_copy_does_not():
    nb = nbformat.read(LESSON, as_version=4)
    solved = _exercise_code(nb)
    assert all(word in solved["03.1"] for word in QUERY_API), solved["03.1"]
    assert all(word in solved["03.2"] for word in ("session.prepare", "BatchType.UNLOGGED", "execute_concurrent"))
    student, _ = student_version(nb, LESSON.name)
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert not [word for word in QUERY_API if word in code]


def test_every_prediction_starts_empty_and_the_checks_never_read_one():
    nb = nbformat.read(LESSON, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    predictions = [line for src in code for line in src.splitlines() if line.startswith("predicted_")]
    assert predictions and all(line.split("=", 1)[1].split("#")[0].strip() == "None" for line in predictions)
    assert "predicted_" not in code[-1]
