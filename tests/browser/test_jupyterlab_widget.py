"""JupyterLab in headless chromium: a lab notebook's live-plot cell renders a plotly
widget fed from the real Prometheus (screenshot kept in tests/artifacts/)."""

from __future__ import annotations

import nbformat
import pytest

from tests.browser.lab_server import jupyterlab_at


@pytest.fixture
def jupyterlab(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        'from labsupport.observe.widgets import LivePlot\nlive = LivePlot("Messages in/s", interval=1)\nlive.widget')]
    nbformat.write(nb, root / "live.ipynb")
    with jupyterlab_at(root) as server:
        yield server


def test_live_plot_widget_renders_in_jupyterlab(lab_stack, jupyterlab, page, artifacts):
    base, token = jupyterlab
    page.goto(f"{base}/lab/tree/live.ipynb?token={token}")
    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    cell.wait_for(timeout=60_000)
    page.locator(".jp-Spinner").wait_for(state="hidden", timeout=90_000)  # notebook fully loaded
    # a cell run before the kernel is connected is dropped: wait for the idle kernel
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    cell.click()
    page.keyboard.press("Shift+Enter")
    plot = page.locator(".jp-OutputArea .js-plotly-plot").first
    try:
        plot.wait_for(timeout=120_000)
    finally:
        page.screenshot(path=str(artifacts / "jupyterlab-live-plot.png"))
    # a trace with points means the kernel's thread got a series from Prometheus into the widget
    # (read from the plot's data: an idle broker's flat line has no height, so it never
    # counts as "visible" to the browser)
    page.wait_for_function("""() => {
        const gd = document.querySelector(".jp-OutputArea .js-plotly-plot");
        return gd && gd.data && gd.data.length > 0 && gd.data[0].x && gd.data[0].x.length > 1;
    }""", timeout=30_000)
    page.locator(".jp-OutputArea button:has-text('Stop')").first.wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / "jupyterlab-live-plot.png"))
    assert plot.bounding_box()["width"] > 200
