"""What a learner reads after a measurement: the prediction line and the compact results
table (labsupport.lessons.predictions, labsupport.lessons.results). Pure: no services."""

import pytest

from labsupport.lessons.audit import tally
from labsupport.lessons.predictions import prediction_line, show_prediction
from labsupport.lessons.results import HIGHLIGHT, results_table, summary_rows
from tests.unit.test_audit import M, T0, ids, stored


def clean_report():
    produced = ids("a", 5, 0)
    return tally(T0, T0 + M, produced, stored(*produced.items()), {T0: 5})


def lossy_report():
    produced = ids("a", 5, 0)
    rows = stored(*[(i, ms) for i, ms in produced.items() if i not in ("a1", "a2")])
    return tally(T0, T0 + M, produced, rows, {T0: 3}, quarantined={T0: 1})


# ---- predictions -------------------------------------------------------------------------
def test_a_prediction_is_printed_beside_the_measurement(capsys):
    show_prediction("drain time", 40, 52.25, unit="s")
    assert capsys.readouterr().out == "drain time: measured 52.2 s · you predicted 40 s\n"


def test_no_prediction_is_said_plainly():
    assert prediction_line("lost events", None, 1200) == "lost events: measured 1,200 · no prediction made"


def test_words_are_predictions_too_and_get_no_unit():
    assert prediction_line("counter during the outage", "flat", "rising", unit="events") == \
        "counter during the outage: measured rising · you predicted flat"


# ---- the results table -------------------------------------------------------------------
def test_one_row_per_run_with_the_five_counts():
    frame = summary_rows({"A (latest)": lossy_report(), "fixed": clean_report()})
    assert list(frame.index) == ["A (latest)", "fixed"]
    assert list(frame.columns) == ["produced", "landed", "missing", "duplicated", "quarantined"]
    assert frame.loc["A (latest)"].tolist() == [5, 3, 2, 0, 1]
    assert frame.loc["fixed"].tolist() == [5, 5, 0, 0, 0]


def test_rarer_problems_appear_only_when_some_run_has_them():
    produced = ids("a", 3, 0)
    twice = tally(T0, T0 + M, produced, stored(*produced.items()), {T0: 3},
                  published={"a0": 2, "a1": 1, "a2": 1})
    frame = summary_rows({"clean": clean_report(), "retried": twice})
    assert "published twice" in frame.columns and "stored twice" not in frame.columns
    assert "dead-lettered" not in frame.columns
    assert frame["published twice"].isna().tolist() == [True, False]  # unknown (no topic read) is not 0


def test_problem_counts_are_highlighted_only_when_not_zero():
    html = results_table({"A": lossy_report(), "fixed": clean_report()}).to_html()
    styled = [line for line in html.splitlines() if line.startswith("#T_")]
    # row 0 (A): missing (col 2) and quarantined (col 4); nothing of row 1 (fixed)
    assert styled and all("row1" not in line for line in styled)
    assert "row0_col2" in styled[0] and "row0_col4" in styled[0] and "row0_col3" not in styled[0]
    assert HIGHLIGHT.split(";")[0] in html


def test_mappings_and_extra_columns():
    styler = results_table({"A": lossy_report().as_dict(), "B": {"produced": 10, "landed": 10}},
                           extra={"resumed from batch": {"A": 7}}, caption="two runs")
    frame = styler.data
    assert frame.loc["A", "resumed from batch"] == 7 and frame.loc["B", "resumed from batch"] is None
    assert frame["missing"].isna().tolist() == [False, True]
    html = styler.to_html()
    assert "two runs" in html and ">7<" in html  # an extra column's value is shown as given, not as 7.000000
    assert html.count(">–<") == 4  # B's missing, duplicated, quarantined and resumed from: a dash, not 0


def test_an_extra_column_naming_an_unknown_run_is_refused():
    with pytest.raises(KeyError, match="not in the table"):
        results_table({"A": clean_report()}, extra={"x": {"B": 1}})


def test_an_audit_report_renders_itself_as_one_row():
    html = lossy_report()._repr_html_()
    assert html.count("<tr>") == 2  # the header and one run
    assert "07:00:00–07:01:00 UTC" in html and "as_dict" not in html


def test_printing_an_audit_report_gives_the_same_row_on_one_line():
    assert str(lossy_report()) == ("07:00:00–07:01:00 UTC · produced 5 · landed 3 · missing 2 · duplicated 0 · "
                                   "quarantined 1")


def test_events_set_aside_at_ingestion_show_as_dead_lettered_not_missing():
    produced = ids("a", 3, 0)
    rows = stored(*[(i, ms) for i, ms in produced.items() if i != "a1"])
    frame = summary_rows({"big events": tally(T0, T0 + M, produced, rows, {T0: 2}, dead_lettered={"a1"})})
    assert frame.loc["big events", ["missing", "dead-lettered"]].tolist() == [0, 1]
