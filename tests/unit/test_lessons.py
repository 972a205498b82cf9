"""reset_to picks the steps a lesson needs (the steps themselves run against the real
stack in the notebook tests)."""

from __future__ import annotations

from labsupport.lessons import reset as lessons
from labsupport.config import LabConfig


def _recorded(monkeypatch, lesson: int) -> list[str]:
    calls: list[str] = []
    fake = [(r, what, lambda cfg, w=what: calls.append(w)) for r, what, _ in lessons.STEPS]
    monkeypatch.setattr(lessons, "STEPS", fake)
    assert lessons.reset_to(lesson, cfg=LabConfig(), progress=lambda _m: None) == calls
    return calls


def test_lesson_2_gets_the_core_and_the_events_api(monkeypatch):
    calls = _recorded(monkeypatch, 2)
    assert len(calls) == 2 and "events API" in calls[1]


def test_lesson_2_leaves_airflow_to_the_lesson_which_starts_it_with_its_settings(monkeypatch):
    from labsupport.ingest import topics

    started: list[str] = []
    monkeypatch.setattr(lessons.stack, "up", lambda names, cfg=None: started.extend(names))
    monkeypatch.setattr(topics, "ensure_topic", lambda *a, **k: None)
    lessons.reset_to(2, cfg=LabConfig(), progress=lambda _m: None)
    assert "events-api" in started and "airflow" not in started, started


def test_lesson_3_gets_its_events_but_no_airflow(monkeypatch):
    calls = _recorded(monkeypatch, 3)
    assert len(calls) == 2 and "Kafka" in calls[0] and "schema" in calls[1]
    assert not any("Airflow" in c for c in calls)


def test_lesson_6_checks_for_kafkas_producer_tools_but_not_lesson_5_or_7(monkeypatch):
    assert any("producer tools" in c for c in _recorded(monkeypatch, 6))
    assert not any("producer tools" in c for c in _recorded(monkeypatch, 5) + _recorded(monkeypatch, 7))


def test_lesson_9_gets_the_schema_and_topic_but_publishes_nothing_into_the_cluster(monkeypatch):
    calls = _recorded(monkeypatch, 9)
    assert "three-broker cluster" in calls[0]
    assert any("`events` topic created" in c for c in calls)
    assert not any("recent events" in c for c in calls)  # its streams read topics of their own
    assert any("recent events" in c for c in _recorded(monkeypatch, 8))
