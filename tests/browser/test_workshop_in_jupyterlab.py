"""The workshop as a learner meets it, in JupyterLab in headless chromium: the syllabus
(the student copies' README.md, rendered), a lesson's student copy opened from it, the
exercise's collapsed hint opened by a click, and ``%load solutions/NN.k.py`` run in the
exercise cell replacing the cell with the solution. Screenshots in tests/artifacts/.

Exercise 04.1 because loading it needs nothing from the cells above it (``%load`` only
reads a file next to the notebook): no kernel state, no services, a test of seconds."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from labsupport.lessons import workshop
from tests.browser.lab_server import jupyterlab_at

LESSON, EXERCISE = "04_checkpoint_in_tmp.ipynb", "04.1"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("workshop")
    workshop.build(root)
    # the app object in the page lets the test open the README the way "Open With →
    # Markdown Preview" does
    with jupyterlab_at(root, "--LabApp.expose_app_in_browser=True") as server:
        yield root, server


def test_syllabus_hint_and_solution_in_jupyterlab(student_lab, page, artifacts):
    root, (base, token) = student_lab
    solution = (root / workshop.SOLUTIONS_DIR / f"{EXERCISE}.py").read_text()

    # the syllabus, rendered, and the lesson opened from its link
    page.goto(f"{base}/lab?token={token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('docmanager:open')",
                           timeout=TIMEOUT_MS)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', "
                  "{path: 'README.md', factory: 'Markdown Preview'})")
    syllabus = page.locator(".jp-RenderedMarkdown").filter(has=page.locator("h1", has_text="Syllabus"))
    syllabus.wait_for(timeout=TIMEOUT_MS)
    assert syllabus.locator(f"td:has-text('{EXERCISE}')").count() >= 1, "the syllabus lists the exercise"
    page.screenshot(path=str(artifacts / "workshop-syllabus.png"))
    syllabus.locator(f"a[href*='{LESSON}']").first.click()

    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-CodeCell").first.wait_for(timeout=TIMEOUT_MS)
    # a cell run before the kernel is connected is dropped: wait for the idle kernel
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)

    # the two hint levels: each collapsed, then opened one after the other
    task = notebook.locator(".jp-MarkdownCell").filter(
        has=page.locator("h3", has_text=f"Exercise {EXERCISE}"))
    task.scroll_into_view_if_needed()
    levels = task.locator("details")
    assert levels.count() == 2, "two hint levels: where to look, then the approach"
    for i, (summary, says) in enumerate((("Hint 1", "iterdir"), ("Hint 2", "checksum"))):
        level = levels.nth(i)
        hint_text = level.locator("p").first
        assert level.get_attribute("open") is None and not hint_text.is_visible(), f"{summary} starts collapsed"
        # JupyterLab renders a markdown cell asynchronously and skips the rendering of cells
        # out of view (CSS content-visibility), where innerText reads '': these assertions
        # retry until the text is there (textContent), and the click needs it in view
        expect(level.locator("summary")).to_contain_text(summary, timeout=10_000)
        level.locator("summary").click()
        hint_text.wait_for(state="visible", timeout=10_000)
        expect(level).to_contain_text(says, timeout=10_000)

    # %load in the exercise cell: the cell becomes the solution
    cell = notebook.locator(".jp-CodeCell").filter(has_text=f'todo("{EXERCISE}")')
    assert cell.count() == 1
    cell.scroll_into_view_if_needed()
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(f"%load {workshop.SOLUTIONS_DIR}/{EXERCISE}.py")
    page.keyboard.press("Control+Enter")  # run in place: the loaded code replaces this very cell
    loaded = notebook.locator(".jp-CodeCell").filter(has_text="ids = [int(p.name)").first
    loaded.wait_for(timeout=TIMEOUT_MS)
    loaded.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "workshop-hint-and-solution.png"))
    text = loaded.locator(".cm-content").inner_text()
    assert f"# %load {workshop.SOLUTIONS_DIR}/{EXERCISE}.py" in text and "todo(" not in text, text
    for line in ("def resumed_from(checkpoint: Path) -> int:", "return max(ids, default=-1)"):
        assert line in solution and line in text, line
