"""Workshop material generated from the lesson notebooks themselves.

One set of notebooks holds the lessons *and* their solutions; student copies and the
exercise/solution branches are built from it. The conventions (checked here, so a lesson
that breaks them is refused with its notebook and cell named, and nothing is written):

* an exercise is a markdown cell headed ``### Exercise NN.k · Title`` (NN the lesson's
  number, k counting from 1) that states the task and ends with two collapsed hints, a
  nudge before the telling: ``<details><summary>Hint 1 · where to look</summary> (the API
  and its doc) </details>`` then ``<details><summary>Hint 2 · the approach</summary> (the
  approach in words) </details>``; neither is the code, the code is ``solutions/NN.k.py``.
  A single ``<summary>Hint</summary>`` is still accepted while lessons move to two levels
  (tests/unit/test_lesson_conventions.py requires the two);
* the code cell right after it carries ``{"exercise": {"id": "NN.k", "difficulty":
  "easy|medium|hard", "minutes": n}}`` in its metadata (the syllabus reads it) and the
  solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines (nbgrader's
  markers): balanced, not nested, only in code cells.

A student copy replaces each solution block with ``todo("NN.k")``; when the block sits
in a function, ``require_done`` is called right after the function is defined, so the
notebook stops in the exercise's own cell with ``ExerciseNotDone: Exercise NN.k is not
done yet: <hint 1> …`` (and where hint 2 is) — before anything (a Spark query, say) calls the function
(labsupport.lessons.exercises). Each solution is also written to ``solutions/NN.k.py``
beside the copies: ``%load solutions/NN.k.py`` in the cell replaces it with the answer.
``%load`` rather than a lab helper because it is plain IPython (any Jupyter front end, no
import), it shows the learner the code before running it, and the file is generated from
the same notebook as the copy, so the two cannot drift apart.

A student copy is itself a valid lesson: an exercise cell that calls ``todo("NN.k")``
instead of holding a solution block is an *unsolved* exercise (``Exercise.solved`` is
False). That is what the ``workshop/exercises`` branch holds: its syllabus renders the
same, building from it again gives the same copies (with the ``solutions/`` files it
already has), and its notebook tests expect each lesson to stop at its first unsolved
exercise (``first_unsolved``) instead of passing.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labsupport.config import REPO_ROOT
from labsupport.errors import LabError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
DIFFICULTIES = ("easy", "medium", "hard")
LESSON_GLOB = "[0-9][0-9]_*.ipynb"
SOLUTIONS_DIR = "solutions"
_HEADING = re.compile(r"^###\s+Exercise\s+(\S+)\s+·\s+(.+?)\s*$", re.M)
#: ``<details><summary>Hint 2 · the approach</summary> … </details>``; the level and title are
#: optional (``<summary>Hint</summary>``, the single level of older lessons)
_HINT = re.compile(r"<details>\s*<summary>\s*Hint\b(?:\s*(?P<level>\d+))?(?P<title>[^<]*)</summary>"
                   r"(?P<body>.*?)</details>", re.S)
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_IMPORT = "from labsupport.lessons.exercises import {names}"


class BadExercise(LabError):
    """A lesson notebook breaks the exercise conventions (markers, metadata, hint)."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    difficulty: str
    minutes: int
    hint: str  #: the hint on one line, as the student copy's error message shows it
    cell: int  #: index of the code cell in the notebook
    solved: bool = True  #: False in a student copy: the cell calls todo("NN.k") instead
    levels: int = 1  #: how many hint levels the exercise has (2 by the convention; 1 in older lessons)


@dataclass(frozen=True)
class Hint:
    level: int  #: 1 or 2; 0 for an older lesson's single ``Hint``
    title: str  #: what the summary says after the level, e.g. "where to look"
    text: str  #: the body on one line, markdown links as ``text (url)``, no HTML tags
    source: str = ""  #: the body as written (markdown)


@dataclass(frozen=True)
class _Block:
    begin: int  #: line index of the BEGIN marker
    end: int  #: line index of the END marker
    indent: str


def _where(name: str, index: int, cell) -> str:
    return f"{name}, cell {index} (id {cell.get('id', '?')})"


def _blocks(source: str, where: str) -> list[_Block]:
    """The solution blocks of one code cell; unbalanced or nested markers are refused."""
    blocks, open_at = [], None
    lines = source.split("\n")
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(BEGIN):
            if open_at is not None:
                raise BadExercise(f"{where}: nested {BEGIN} (line {i + 1}) inside the block opened on line "
                                  f"{open_at + 1}", f"close each block with {END} before the next {BEGIN}")
            open_at = i
        elif text.startswith(END):
            if open_at is None:
                raise BadExercise(f"{where}: {END} on line {i + 1} without a {BEGIN}", "balance the markers")
            blocks.append(_Block(open_at, i, lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]))
            open_at = None
    if open_at is not None:
        raise BadExercise(f"{where}: {BEGIN} on line {open_at + 1} is never closed", f"add its {END}")
    return blocks


def _calls_todo(source: str, ex_id: str) -> bool:
    """The cell is a student copy's exercise: ``todo("NN.k"`` where the solution was."""
    return re.search(rf"""\btodo\(\s*["']{re.escape(ex_id)}["']""", source) is not None


def one_line(markdown: str) -> str:
    return " ".join(markdown.split())


def hints(markdown: str) -> list[Hint]:
    """The collapsed hints of an exercise's markdown cell, in the order written."""
    return [Hint(int(m.group("level") or 0), m.group("title").strip(" ·:-\u2013\u2014"),
                 one_line(_TAG.sub("", _LINK.sub(r"\1 (\2)", m.group("body")))), m.group("body"))
            for m in _HINT.finditer(markdown)]


def stop_message(found: list[Hint]) -> str:
    """What the student copy's ExerciseNotDone says after 'is not done yet: ': hint 1, and
    where hint 2 is (the learner reads the nudge first, the approach only if still stuck)."""
    if len(found) == 1:
        return found[0].text
    title = f" ({found[1].title})" if found[1].title else ""
    return f"{found[0].text} — still stuck? Open Hint 2{title} in the exercise's cell above."


def _checked_hints(markdown: str, ex_id: str, where: str) -> list[Hint]:
    """Two levels (Hint 1, Hint 2) or an older lesson's single Hint, none of them empty."""
    found = hints(markdown)
    levels = [h.level for h in found]
    if levels in ([1, 2], [0]) and all(h.text for h in found):
        return found
    problem = ("no hint" if not found else "an empty hint" if levels in ([1, 2], [0])
               else f"hints numbered {levels} (0: no number)")
    raise BadExercise(f"{where}: exercise {ex_id} has {problem}",
                      "end the task with <details><summary>Hint 1 · where to look</summary> … </details> "
                      "then <details><summary>Hint 2 · the approach</summary> … </details>, neither empty")


def exercises(nb: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """The exercises of one lesson notebook, every convention checked (BadExercise)."""
    lesson = name[:2]
    found: list[Exercise] = []
    for index, cell in enumerate(nb.cells):
        where = _where(name, index, cell)
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise BadExercise(f"{where}: solution markers in a {cell.cell_type} cell",
                                  "markers belong in code cells; write about them without the ### prefix")
            continue
        if "solution" in cell.metadata.get("tags", []):
            raise BadExercise(f"{where}: a cell tagged 'solution'",
                              f"keep the solution in the exercise cell between {BEGIN} and {END}")
        meta = cell.metadata.get("exercise")
        solved = bool(_blocks(cell.source, where))
        if not solved:
            if not meta:
                continue
            if not (isinstance(meta, dict) and _calls_todo(cell.source, str(meta.get("id")))):
                raise BadExercise(f"{where}: exercise metadata but no {BEGIN} block (nor, as in a student copy, "
                                  f"a todo(...) call)", "mark the solution")
        if not isinstance(meta, dict) or not {"id", "difficulty", "minutes"} <= set(meta):
            raise BadExercise(f"{where}: a solution without exercise metadata",
                              'add {"exercise": {"id": "NN.k", "difficulty": "easy", "minutes": 5}} to the cell')
        ex_id = str(meta["id"])
        expected = f"{lesson}.{len(found) + 1}"
        if ex_id != expected:
            raise BadExercise(f"{where}: exercise id {ex_id!r}, expected {expected!r}",
                              "number a lesson's exercises NN.1, NN.2, … in order")
        if meta["difficulty"] not in DIFFICULTIES or not (isinstance(meta["minutes"], int) and meta["minutes"] > 0):
            raise BadExercise(f"{where}: difficulty {meta['difficulty']!r}, minutes {meta['minutes']!r}",
                              f"difficulty is one of {', '.join(DIFFICULTIES)}; minutes a positive integer")
        prose = nb.cells[index - 1] if index else None
        heading = _HEADING.search(prose.source) if prose is not None and prose.cell_type == "markdown" else None
        if heading is None or heading.group(1) != ex_id:
            raise BadExercise(f"{where}: exercise {ex_id} is not preceded by a markdown cell headed "
                              f"'### Exercise {ex_id} · Title'", "state the task in that cell, right above the code")
        levels = _checked_hints(prose.source, ex_id, _where(name, index - 1, prose))
        found.append(Exercise(ex_id, heading.group(2), meta["difficulty"], meta["minutes"],
                              stop_message(levels), index, solved, len(levels)))
    return found


def solution_lines(source: str, where: str = "") -> list[str]:
    """The lines inside a code cell's solution blocks, markers excluded: the code the
    student copy removes (and ``%load solutions/NN.k.py`` brings back)."""
    lines = source.split("\n")
    return [line for block in _blocks(source, where) for line in lines[block.begin + 1:block.end]]


def first_unsolved(nb: nbformat.NotebookNode, name: str) -> Exercise | None:
    """The exercise a student copy stops at (its first ``todo``); None for a solution version."""
    return next((ex for ex in exercises(nb, name) if not ex.solved), None)


def _parse(source: str, where: str) -> ast.Module:
    from IPython.core.inputtransformer2 import TransformerManager

    try:  # magics become calls on the same line, so line numbers still match the cell's
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError as exc:
        raise BadExercise(f"{where}: the solution cell is not valid Python ({exc.msg}, line {exc.lineno})",
                          "fix the cell") from exc


def _enclosing_def(tree: ast.Module, line: int, where: str) -> ast.FunctionDef | None:
    """The top-level function whose body holds ``line`` (1-based), if any."""
    for node in tree.body:
        if node.lineno <= line <= node.end_lineno:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
            if isinstance(node, ast.ClassDef):
                raise BadExercise(f"{where}: a solution inside class {node.name}",
                                  "put the exercise in a top-level function")
            return None
    return None


def student_cell(source: str, ex: Exercise, where: str) -> str:
    """The cell with every solution block replaced by ``todo`` (see the module doc)."""
    lines = source.split("\n")
    tree = _parse(source, where)
    checked: dict[str, int] = {}  # function name -> line index after which require_done goes
    edits = []
    for block in _blocks(source, where):
        func = _enclosing_def(tree, block.begin + 1, where)
        stub = [f"{block.indent}# YOUR CODE HERE, in place of the todo() line. Stuck? Open Hint 1 above, then Hint 2;",
                f"{block.indent}# `%load {SOLUTIONS_DIR}/{ex.id}.py` in this cell replaces it with the solution.",
                f'{block.indent}todo("{ex.id}")' if func else f'{block.indent}todo("{ex.id}", hint={ex.hint!r})']
        edits.append((block.begin, block.end + 1, stub))
        if func is not None:  # after the def's last line, or its END marker (a comment: not in the AST)
            checked[func.name] = max(checked.get(func.name, 0), func.end_lineno - 1, block.end)
    for fname, after in checked.items():
        edits.append((after + 1, after + 1, ["", "", f'require_done("{ex.id}", {fname}, hint={ex.hint!r})']))
    for start, stop, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:stop] = new
    names = "require_done, todo" if checked else "todo"
    out = "\n".join([_IMPORT.format(names=names), *lines])
    _parse(out, where)  # still valid Python
    return out


def solution_source(source: str, ex: Exercise) -> str:
    """What ``%load solutions/NN.k.py`` puts into the cell: the lesson's cell, markers removed."""
    kept = [line for line in source.split("\n") if not line.strip().startswith((BEGIN, END))]
    return "\n".join([f"# Exercise {ex.id} · {ex.title} — a solution", *kept]).rstrip("\n") + "\n"


def student_version(nb: nbformat.NotebookNode, name: str) -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """(student notebook, {exercise id: solution source}); outputs cleared."""
    out = nbformat.from_dict(nb)
    solutions = {}
    for ex in exercises(nb, name):
        if not ex.solved:  # already a student cell
            continue
        cell = out.cells[ex.cell]
        solutions[ex.id] = solution_source(cell.source, ex)
        cell.source = student_cell(cell.source, ex, _where(name, ex.cell, cell))
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out, solutions


def render(src: Path) -> dict[str, str]:
    """Every file of the student copies, relative path -> text; BadExercise before any is written.

    An exercise already unsolved in ``src`` (a student copy: the exercises branch) keeps
    the solution file that was generated with it, ``src/solutions/NN.k.py``."""
    files: dict[str, str] = {}
    for path in sorted(src.glob(LESSON_GLOB)):
        original = nbformat.read(path, as_version=4)
        nb, solutions = student_version(original, path.name)
        text = nbformat.writes(nb)
        files[path.name] = text if text.endswith("\n") else text + "\n"  # as nbformat.write puts it on disk
        for ex in exercises(original, path.name):
            if not ex.solved:
                kept = src / SOLUTIONS_DIR / f"{ex.id}.py"
                if not kept.is_file():
                    raise BadExercise(f"{path.name}, cell {ex.cell}: exercise {ex.id} is a student copy (todo) "
                                      f"without its {SOLUTIONS_DIR}/{ex.id}.py",
                                      "build the student copies from the solution notebooks")
                solutions[ex.id] = kept.read_text()
        for ex_id, text in solutions.items():
            files[f"{SOLUTIONS_DIR}/{ex_id}.py"] = text
    for extra in sorted(src.glob("*.md")):
        files[extra.name] = extra.read_text()
    return files


def build(dest: Path, src: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """Write the student copies of every lesson (and ``solutions/``) into ``dest``.

    Everything is rendered and checked first, then written into a temporary folder
    beside ``dest`` and moved in: a refused lesson leaves ``dest`` untouched."""
    files = render(src)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".workshop-", dir=dest.parent))
    try:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        shutil.rmtree(dest / SOLUTIONS_DIR, ignore_errors=True)  # no stale answers of removed exercises
        for rel in sorted({r.split("/")[0] for r in files}):
            os.replace(tmp / rel, dest / rel)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [dest / rel for rel in files if rel.endswith(".ipynb")]


def branches(exercise: str = "workshop/exercises", solution: str = "workshop/solutions",
             repo: Path = REPO_ROOT) -> None:
    """Create/refresh two branches from HEAD: solutions as-is, exercises stripped."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    if git("status", "--porcelain", "--untracked-files=no"):
        raise LabError("the working tree has uncommitted changes", "commit or stash them first")
    render(repo / "notebooks")  # refuse bad markers before any branch moves
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
