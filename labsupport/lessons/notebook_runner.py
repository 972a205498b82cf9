"""Run the lesson notebooks with papermill: `lab notebooks` and the notebook tests.

Fast mode sets the ``FAST`` parameter every lesson declares in its ``parameters``
cell (smaller windows, bounded streams). A per-cell timeout makes a hung cell fail
fast instead of hanging the run.
"""

from __future__ import annotations

import time
from pathlib import Path

from labsupport.config import LabConfig, REPO_ROOT, get_config

NOTEBOOKS = REPO_ROOT / "notebooks"
CELL_TIMEOUT_S = 600


def lessons() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run(path: Path, fast: bool = True, cfg: LabConfig | None = None, parameters: dict | None = None,
        cell_timeout: int = CELL_TIMEOUT_S) -> tuple[Path, float]:
    """Execute one notebook; returns (executed copy, seconds). Raises on any cell error."""
    import papermill

    cfg = cfg or get_config()
    out_dir = cfg.paths.home / "notebook-runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    started = time.monotonic()
    papermill.execute_notebook(str(path), str(out), parameters={"FAST": fast, **(parameters or {})},
                               cwd=str(path.parent), kernel_name="python3", execution_timeout=cell_timeout,
                               progress_bar=False, log_output=False)
    return out, time.monotonic() - started
