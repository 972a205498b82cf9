"""`lab notebooks --html`: an executed lesson as a page that keeps its plots offline;
executed lessons that stay light (no live plot's widget state stored)."""

import nbformat
import pytest
import plotly.graph_objects as go

from labsupport.lessons import notebook_runner


def executed_with_figures(tmp_path, figures=2):
    nb = nbformat.v4.new_notebook()
    for i in range(figures):
        cell = nbformat.v4.new_code_cell(f"fig{i}", execution_count=i + 1)
        fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[i, i + 1, i + 4]))
        cell.outputs = [nbformat.v4.new_output("display_data", data={notebook_runner.PLOTLY_MIME: fig.to_plotly_json()})]
        nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {}}}}
    path = tmp_path / "07_lesson.ipynb"
    nbformat.write(nb, path)
    return path


def test_page_draws_every_plotly_figure_with_plotly_js_beside_it_loaded_once(tmp_path):
    page = notebook_runner.to_html(executed_with_figures(tmp_path), tmp_path / "pages")
    html = page.read_text()
    assert page.name == "07_lesson.html"
    assert html.count("Plotly.newPlot(") == 2 and "plotly.js v" not in html
    assert html.count(f'src="{notebook_runner.PLOTLY_JS}"') == 1
    assert (page.parent / notebook_runner.PLOTLY_JS).read_text().startswith("/**\n* plotly.js v")
    assert page.stat().st_size < notebook_runner.MAX_EXECUTED_BYTES
    assert "widget-state+json" not in html


def test_a_page_without_figures_writes_no_plotly_js(tmp_path):
    page = notebook_runner.to_html(executed_with_figures(tmp_path, figures=0), tmp_path / "pages")
    assert not (page.parent / notebook_runner.PLOTLY_JS).exists()


def test_a_heavy_notebook_names_its_heaviest_parts(tmp_path):
    path = executed_with_figures(tmp_path)
    assert notebook_runner.too_heavy(path) is None
    nb = nbformat.read(path, as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": {"_esm": "x" * 3_100_000}}}}
    nbformat.write(nb, path)
    parts = notebook_runner.heaviest_parts(path)
    assert parts[0][0] == "metadata.widgets" and parts[0][1] > 3_100_000
    assert [where for where, _ in parts[1:]] == ["cell 0 outputs", "cell 1 outputs"]
    assert notebook_runner.too_heavy(path, limit=10 * 3_100_000) is None
    assert notebook_runner.too_heavy(path) == (f"07_lesson.ipynb weighs {path.stat().st_size / 1e6:.1f} MB "
                                              f"(limit 3 MB); heaviest: metadata.widgets 3.1 MB, "
                                              f"cell 0 outputs 0.0 MB, cell 1 outputs 0.0 MB")


#: a widget displayed: its state is stored the same way as a live plot's FigureWidget (whose
#: state carries plotly's whole front-end bundle, ~5 MB), and it is quick to make
WIDGET_CELL = "import ipywidgets\nipywidgets.IntSlider(7)"


def test_an_executed_notebook_keeps_no_widget_state(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("FAST = False", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(WIDGET_CELL)]
    nbformat.write(nb, tmp_path / "07_lesson.ipynb")
    out, _ = notebook_runner.run(tmp_path / "07_lesson.ipynb", out_dir=tmp_path / "runs")
    executed = nbformat.read(out, as_version=4)
    assert "application/vnd.jupyter.widget-view+json" in executed.cells[-1].outputs[0]["data"]  # it ran
    assert "widgets" not in executed.metadata


def test_a_learner_run_keeps_no_widget_state(tmp_path):
    """Cell by cell, nbclient never writes the state (it does at the end of a whole run)."""
    run = notebook_runner.run_as_learner(learner_lesson(tmp_path, WIDGET_CELL), out_dir=tmp_path / "runs")
    executed = nbformat.read(run.executed, as_version=4)
    assert "application/vnd.jupyter.widget-view+json" in executed.cells[-1].outputs[0]["data"]
    assert "widgets" not in executed.metadata


def test_page_is_the_same_every_time(tmp_path):
    path = executed_with_figures(tmp_path)
    first = notebook_runner.to_html(path, tmp_path / "a").read_bytes()
    assert notebook_runner.to_html(path, tmp_path / "b").read_bytes() == first


def learner_lesson(tmp_path, last_cell: str):
    """A two-exercise lesson (one top-level solution, one inside a function) built into a
    student copy with its solutions/ beside it; returns the copy's path."""
    from labsupport.lessons import workshop
    from tests.unit.test_workshop import FUNCTION_CELL, TOPLEVEL_CELL, exercise_cell, exercise_md, lesson

    nb = lesson(nbformat.v4.new_markdown_cell(exercise_md("07.1")), exercise_cell(TOPLEVEL_CELL, "07.1"),
                nbformat.v4.new_markdown_cell(exercise_md("07.2")), exercise_cell(FUNCTION_CELL, "07.2"),
                nbformat.v4.new_code_cell(last_cell))
    nb.cells[1].metadata["tags"] = ["parameters"]  # FAST = False, as every lesson declares it
    (tmp_path / "src").mkdir()
    nbformat.write(nb, tmp_path / "src" / "07_lesson.ipynb")
    workshop.build(tmp_path / "student", src=tmp_path / "src")
    return tmp_path / "student" / "07_lesson.ipynb"


def test_a_learner_run_stops_at_each_exercise_loads_its_solution_and_runs_to_the_end(tmp_path):
    copy = learner_lesson(tmp_path, "assert answer == 42 and write_batch([1, 2], 7) == 2 and calls == [7]\n"
                                    "print('checked', FAST)")
    run = notebook_runner.run_as_learner(copy, fast=True, out_dir=tmp_path / "runs")
    assert [(s.ename, s.evalue.split(":")[0]) for s in run.stops] == [
        ("ExerciseNotDone", "Exercise 07.1 is not done yet"), ("ExerciseNotDone", "Exercise 07.2 is not done yet")]
    student = nbformat.read(copy, as_version=4)
    assert [s.cell_id for s in run.stops] == [student.cells[3].id, student.cells[5].id]
    executed = nbformat.read(run.executed, as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "checked True\n"  # FAST injected as papermill does
    loaded = {c.id: c.source for c in executed.cells}
    assert "answer = x + 41" in loaded[student.cells[3].id] and "calls.append" in loaded[student.cells[5].id]
    assert "todo(" not in loaded[student.cells[5].id]


def test_a_learner_run_fails_on_any_other_error(tmp_path):
    from nbclient.exceptions import CellExecutionError

    copy = learner_lesson(tmp_path, "raise ValueError('a broken lesson')")
    with pytest.raises(CellExecutionError, match="a broken lesson"):
        notebook_runner.run_as_learner(copy, out_dir=tmp_path / "runs")
    assert (tmp_path / "runs" / copy.name).is_file()  # kept to see where it failed
