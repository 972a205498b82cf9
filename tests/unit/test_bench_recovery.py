"""The recovery step's arithmetic: the phases between kill -9 and the first committed
batch add up to the figure reported, in order, however the polls dated them."""

from __future__ import annotations

from labsupport.bench import recovery


def test_phases_are_the_gaps_between_marks_and_sum_to_the_total():
    marks = {"process_up": 10.5, "metrics_up": 14.0, "query_active": 30.0, "first_batch": 41.25}
    phases = recovery.phases_from_marks(marks, t0=10.0)
    assert list(phases) == list(recovery.PHASES)
    assert phases == {"process_up": 0.5, "metrics_up": 3.5, "query_active": 16.0, "first_batch": 11.25}
    assert sum(phases.values()) == 41.25 - 10.0


def test_a_phase_never_seen_is_left_out_not_invented():
    phases = recovery.phases_from_marks({"process_up": 1.0, "first_batch": 5.0}, t0=0.0)
    assert phases == {"process_up": 1.0, "first_batch": 4.0}
