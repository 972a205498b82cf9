"""Run the lesson notebooks with papermill: `lab notebooks`, the notebook tests, and the
student copies (also the way a workshop learner goes through one: `run_as_learner`);
render executed lessons as HTML pages.

Fast mode sets the ``FAST`` parameter every lesson declares in its ``parameters``
cell (smaller windows, bounded streams). A per-cell timeout makes a hung cell fail
fast instead of hanging the run.

An executed lesson stays light (``MAX_EXECUTED_BYTES``): the live plots' widget state
is not stored in it. Each plotly ``FigureWidget`` state carries its whole front-end
bundle (anywidget's ``_esm``, plotly.js inside, ~5 MB a widget, 10–30 MB a lesson),
and JupyterLab itself does not save widget state by default (its ``saveState``
setting), so the executed copy is what a learner's own saved lesson is: each live plot's
last picture is the static figure its ``stop()`` displayed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labsupport.config import LabConfig, REPO_ROOT, get_config
from labsupport.lessons.workshop import SOLUTIONS_DIR

NOTEBOOKS = REPO_ROOT / "notebooks"
CELL_TIMEOUT_S = 600
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: an executed lesson (its notebook or its page) weighs less than this
MAX_EXECUTED_BYTES = 3_000_000
#: plotly.js, written once beside the pages that load it (``to_html``)
PLOTLY_JS = "plotly.min.js"


def lessons(src: Path = NOTEBOOKS) -> list[Path]:
    return sorted(src.glob("[0-9][0-9]_*.ipynb"))


def pages_dir(cfg: LabConfig | None = None) -> Path:
    """Where the notebook tests leave each executed lesson as an HTML page (CI keeps them)."""
    return (cfg or get_config()).paths.home / "artifacts" / "pages"


def run(path: Path, fast: bool = True, cfg: LabConfig | None = None, parameters: dict | None = None,
        cell_timeout: int = CELL_TIMEOUT_S, out_dir: Path | None = None) -> tuple[Path, float]:
    """Execute one notebook; returns (executed copy, seconds). Raises on any cell error
    (papermill's PapermillExecutionError; the executed copy is written all the same)."""
    import papermill

    cfg = cfg or get_config()
    out_dir = out_dir or cfg.paths.home / "notebook-runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    started = time.monotonic()
    papermill.execute_notebook(str(path), str(out), parameters={"FAST": fast, **(parameters or {})},
                               cwd=str(path.parent), kernel_name="python3", execution_timeout=cell_timeout,
                               progress_bar=False, log_output=False, store_widget_state=False)
    return out, time.monotonic() - started


@dataclass(frozen=True)
class Stop:
    """Where and why a run stopped: what a student copy's run is checked against."""
    ename: str
    evalue: str
    cell_id: str | None  #: the failing cell's id (papermill's cell_index counts the cells it adds)
    seconds: float
    executed: Path


def run_until_error(path: Path, fast: bool = True, cfg: LabConfig | None = None,
                    out_dir: Path | None = None) -> Stop | None:
    """Run a notebook expecting a cell to fail; None if every cell passed."""
    from papermill.exceptions import PapermillExecutionError

    cfg = cfg or get_config()
    out_dir = out_dir or cfg.paths.home / "student-runs"
    started = time.monotonic()
    try:
        run(path, fast=fast, cfg=cfg, out_dir=out_dir)
    except PapermillExecutionError as err:
        executed = out_dir / path.name
        failed = [c for c in nbformat.read(executed, as_version=4).cells
                  if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        return Stop(err.ename, err.evalue, failed[0].get("id") if failed else None, time.monotonic() - started,
                    executed)
    return None


@dataclass(frozen=True)
class LearnerRun:
    """A student copy run as a learner goes through it (``run_as_learner``)."""
    stops: tuple[Stop, ...]  #: each exercise it stopped at, in order, before its solution was loaded
    seconds: float
    executed: Path  #: the copy as run, the loaded solutions in their cells


def run_as_learner(path: Path, fast: bool = True, cfg: LabConfig | None = None, out_dir: Path | None = None,
                   cell_timeout: int = CELL_TIMEOUT_S) -> LearnerRun:
    """Run a student copy cell by cell in one kernel, the way a workshop learner does: when
    an exercise's cell stops with ``ExerciseNotDone``, put its solution in the cell (what
    ``%load solutions/NN.k.py`` does, from the ``solutions/`` beside the copy), run the
    cell again and go on to the end. Any other error fails the run (nbclient's
    CellExecutionError; the executed copy is written all the same).

    One run proves both halves of a workshop lesson: the copy stops at each exercise with
    its hint and nowhere else, and with the solutions loaded it runs to its checks."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    cfg = cfg or get_config()
    out_dir = out_dir or cfg.paths.home / "student-runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    nb = parameterize_notebook(load_notebook_node(str(path)), {"FAST": fast}, kernel_name="python3",
                               language="python")
    # cell by cell nbclient stores no widget state (a whole execute() does): kept off all the same
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(path.parent)}})
    stops: list[Stop] = []
    started = time.monotonic()
    try:
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as err:
                    exercise = cell.metadata.get("exercise", {}).get("id")
                    if err.ename != "ExerciseNotDone" or exercise is None:
                        raise
                    stops.append(Stop(err.ename, err.evalue, cell.get("id"), time.monotonic() - started, out))
                    cell.source = (path.parent / SOLUTIONS_DIR / f"{exercise}.py").read_text()
                    client.execute_cell(cell, index)
    finally:
        nbformat.write(nb, out)
    return LearnerRun(tuple(stops), time.monotonic() - started, out)


def heaviest_parts(executed: Path, top: int = 3) -> list[tuple[str, int]]:
    """The ``top`` biggest parts of a notebook file, by their JSON size, biggest first:
    each notebook metadata key (``metadata.widgets``) and each cell's outputs
    (``cell 23 outputs``). What a too-heavy lesson's failure names."""
    nb = json.loads(executed.read_text())
    parts = [(f"metadata.{key}", len(json.dumps(value))) for key, value in nb.get("metadata", {}).items()]
    parts += [(f"cell {i} outputs", len(json.dumps(cell["outputs"])))
              for i, cell in enumerate(nb.get("cells", [])) if cell.get("outputs")]
    return sorted(parts, key=lambda part: -part[1])[:top]


def too_heavy(executed: Path, limit: int = MAX_EXECUTED_BYTES) -> str | None:
    """None if an executed notebook weighs less than ``limit`` bytes, else why not."""
    size = executed.stat().st_size
    if size < limit:
        return None
    parts = ", ".join(f"{where} {n / 1e6:.1f} MB" for where, n in heaviest_parts(executed))
    return f"{executed.name} weighs {size / 1e6:.1f} MB (limit {limit / 1e6:.0f} MB); heaviest: {parts}"


def _static_plotly(nb: nbformat.NotebookNode) -> bool:
    """Plotly figures as HTML that draws them without the notebook front end (which is
    what draws the figure's JSON). plotly.js is loaded from ``PLOTLY_JS`` beside the
    page, not inlined: inline it is 4.8 MB of every page. True if the page has a figure."""
    import plotly.io as pio

    figures = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            fig = output.get("data", {}).get(PLOTLY_MIME)
            if fig is None:
                continue
            output["data"]["text/html"] = pio.to_html(fig, include_plotlyjs="directory" if figures == 0 else False,
                                                      full_html=False,
                                                      div_id=f"figure-{figures}")  # same page, same bytes
            figures += 1
    return figures > 0


def to_html(executed: Path, dest_dir: Path) -> Path:
    """An executed notebook as one HTML page in ``dest_dir`` (its plots included, drawn
    offline by the ``PLOTLY_JS`` written beside it: keep the directory together).

    Live plots' widget state (from a notebook executed elsewhere) is left out: drawing it
    needs a widget manager fetched from a CDN (no use in a room without internet) and it
    weighs ~5 MB per plot. What a page shows of a live plot is the static figure its
    ``stop()`` returns."""
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if _static_plotly(nb):
        (dest_dir / PLOTLY_JS).write_text(get_plotlyjs(), encoding="utf-8")
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = dest_dir / (executed.stem + ".html")
    page.write_text(body)
    return page
