"""`lab notebooks --html`: an executed lesson as a page that keeps its plots offline."""

import nbformat
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


def test_page_draws_every_plotly_figure_with_plotly_js_inline_once(tmp_path):
    page = notebook_runner.to_html(executed_with_figures(tmp_path), tmp_path / "pages")
    html = page.read_text()
    assert page.name == "07_lesson.html"
    assert html.count("Plotly.newPlot(") == 2 and html.count("plotly.js v") == 1
    assert "widget-state+json" not in html


def test_page_is_the_same_every_time(tmp_path):
    path = executed_with_figures(tmp_path)
    first = notebook_runner.to_html(path, tmp_path / "a").read_bytes()
    assert notebook_runner.to_html(path, tmp_path / "b").read_bytes() == first
