"""Workshop material generated from the lesson notebooks themselves.

A solution lives in the notebook between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers); the student version replaces it with a
prompt and a ``NotImplementedError``, so a learner who runs an unsolved cell gets a
clear message instead of a confusing failure later. Cells tagged ``solution`` are
dropped whole. The instructor keeps one set of notebooks; the exercise branch and
the solution branch are both built from it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat

from labsupport.config import REPO_ROOT
from labsupport.errors import LabError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_BLOCK = re.compile(r"^([ \t]*)" + re.escape(BEGIN) + r"[^\n]*\n.*?^[ \t]*" + re.escape(END) + r"[^\n]*(\n|$)",
                    re.S | re.M)


def strip_solutions(source: str) -> str:
    """Replace every solution block by a prompt at the block's indentation."""
    if source.count(BEGIN) != source.count(END):
        raise LabError("unbalanced solution markers", f"every {BEGIN} needs its {END}")

    def prompt(m: re.Match) -> str:
        ind = m.group(1)
        return f"{ind}# YOUR CODE HERE\n{ind}raise NotImplementedError(\"exercise: fill in this part\")\n"

    return _BLOCK.sub(prompt, source)


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out = nbformat.from_dict(nb)
    cells = []
    for cell in out.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = cells
    return out


def build(dest: Path, src: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """Write student versions of every lesson notebook into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        target = dest / path.name
        nbformat.write(student_version(nb), target)
        written.append(target)
    for extra in src.glob("*.md"):
        shutil.copy(extra, dest / extra.name)
    return written


def branches(exercise: str = "workshop/exercises", solution: str = "workshop/solutions",
             repo: Path = REPO_ROOT) -> None:
    """Create/refresh two branches from HEAD: solutions as-is, exercises stripped."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    if git("status", "--porcelain", "--untracked-files=no"):
        raise LabError("the working tree has uncommitted changes", "commit or stash them first")
    head = git("rev-parse", "HEAD")
    git("branch", "-f", solution, head)
    worktree = repo / ".lab" / "workshop-worktree"
    shutil.rmtree(worktree, ignore_errors=True)
    git("worktree", "add", "-f", "-B", exercise, str(worktree), head)
    try:
        build(worktree / "notebooks", src=repo / "notebooks")
        subprocess.run(["git", "add", "notebooks"], cwd=worktree, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "Exercises: solutions stripped from the lesson notebooks",
                        "--allow-empty"], cwd=worktree, check=True)
    finally:
        git("worktree", "remove", "--force", str(worktree))
