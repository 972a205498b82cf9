"""The lesson conventions of issue 23, read statically from the notebooks (no kernel, no
services): the learner owns every prediction, hints nudge before they tell, each lesson
points to the official docs it used, the instructors' guide covers every exercise, and
lesson 03's learner writes the streaming query.

Some of these fail while a lesson is being converted: each failure names the lesson, the
cell and what is missing.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import nbformat
import pytest

from labsupport.config import REPO_ROOT
from labsupport.lessons import workshop
from labsupport.lessons.syllabus import NOTEBOOKS

LESSONS = sorted(NOTEBOOKS.glob(workshop.LESSON_GLOB))
INSTRUCTORS = REPO_ROOT / "docs" / "instructors.md"
STUCK_HEADING = "## The exercises and where learners get stuck"
PREDICTED = "predicted"
#: a solution line shorter than this may well appear in prose ("return rows") without giving anything away
SOLUTION_LINE_MIN = 25
_FURTHER = re.compile(r"^##\s+Further reading\s*$", re.M | re.I)
_URL = re.compile(r"https?://[^\s)>\]\"']+")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


@cache
def notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


@cache
def exercises_of(path: Path) -> tuple[workshop.Exercise, ...]:
    return tuple(workshop.exercises(notebook(path), path.name))


def all_exercises() -> list[tuple[Path, workshop.Exercise]]:
    return [(path, ex) for path in LESSONS for ex in exercises_of(path)]


def python_of(source: str) -> ast.Module:
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(source))


def code_cells(path: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, c) for i, c in enumerate(notebook(path).cells) if c.cell_type == "code"]


def names_assigned(tree: ast.AST) -> list[tuple[str, ast.AST | None, int]]:
    """(name, value or None when not a plain assignment, line) of every name bound by an
    assignment, augmented or annotated assignment, walrus or for-target."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)):
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
            targets, value = [node.target], None
        else:
            continue
        for target in targets:
            plain = isinstance(target, ast.Name)
            for name in (n for n in ast.walk(target) if isinstance(n, ast.Name)):
                found.append((name.id, value if plain else None, node.lineno))
    return found


def lesson_ids(paths):
    return [p.name[:2] for p in paths]


# ---- predictions are the learner's ---------------------------------------------------------------
@pytest.mark.parametrize("path", LESSONS, ids=lesson_ids(LESSONS))
def test_every_predict_variable_starts_as_none(path):
    bad = [f"cell {i} (id {cell.get('id')}) line {line}: {name} = "
           f"{ast.unparse(value) if value is not None else '(not a plain assignment of None)'}"
           for i, cell in code_cells(path) for name, value, line in names_assigned(python_of(cell.source))
           if name.startswith(PREDICTED) and not (isinstance(value, ast.Constant) and value.value is None)]
    assert not bad, (f"{path.name}: a prediction is the learner's — every `{PREDICTED}…` variable is assigned "
                     f"None only (a value the lesson computes wants another name): {bad}")


@pytest.mark.parametrize("path", LESSONS, ids=lesson_ids(LESSONS))
def test_the_checks_cell_never_reads_a_prediction(path):
    index, cell = code_cells(path)[-1]
    read = sorted({n.id for n in ast.walk(python_of(cell.source))
                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id.startswith(PREDICTED)})
    assert not read, f"{path.name}, cell {index} (the checks): reads {read}; checks assert on measurements only"


# ---- hints nudge before they tell ----------------------------------------------------------------
@pytest.mark.parametrize("path", LESSONS, ids=lesson_ids(LESSONS))
def test_every_exercise_has_two_hint_levels(path):
    one = [ex.id for ex in exercises_of(path) if ex.levels != 2]
    assert not one, (f"{path.name}: exercises {one} have one hint; give each <details><summary>Hint 1 · where to "
                     f"look</summary> and <details><summary>Hint 2 · the approach</summary>")


def _statements(code: str) -> int:
    try:
        return len(ast.parse(code).body)
    except SyntaxError:
        return 0


@pytest.mark.parametrize("path", LESSONS, ids=lesson_ids(LESSONS))
def test_no_hint_is_the_solution(path):
    """Neither level holds a code block, a backticked snippet of several statements, or a
    (non-trivial) line of the solution itself."""
    nb = notebook(path)
    bad = []
    for ex in exercises_of(path):
        solution = {line.strip() for line in workshop.solution_lines(nb.cells[ex.cell].source)
                    if len(line.strip()) > SOLUTION_LINE_MIN and not line.strip().startswith("#")}
        for hint in workshop.hints(nb.cells[ex.cell - 1].source):
            where = f"{ex.id} hint {hint.level}"
            if "```" in hint.source or "<pre" in hint.source:
                bad.append(f"{where}: a code block")
            bad += [f"{where}: `{code}` is {_statements(code)} statements" for code in
                    _INLINE_CODE.findall(hint.source) if _statements(code) > 1]
            flat = workshop.one_line(hint.source)
            bad += [f"{where}: holds the solution's line {line!r}" for line in sorted(solution)
                    if workshop.one_line(line) in flat]
    assert not bad, f"{path.name}: a hint gives the answer away (the answer is %load solutions/NN.k.py): {bad}"


def test_at_most_half_of_the_exercises_are_easy():
    found = all_exercises()
    easy = [ex.id for _, ex in found if ex.difficulty == "easy"]
    assert found and len(easy) * 2 <= len(found), f"{len(easy)} of {len(found)} exercises are easy: {easy}"


# ---- further reading -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", LESSONS, ids=lesson_ids(LESSONS))
def test_every_lesson_ends_with_further_reading(path):
    sections = [c.source for c in notebook(path).cells if c.cell_type == "markdown" and _FURTHER.search(c.source)]
    assert sections, f"{path.name}: no markdown cell with a '## Further reading' section"
    text = sections[-1][_FURTHER.search(sections[-1]).end():].split("\n## ")[0]
    links = set(_URL.findall(text))
    assert len(links) >= 2, f"{path.name}: 'Further reading' links {sorted(links)}; give 2–5 official doc pages"


# ---- the instructors' guide ----------------------------------------------------------------------
def stuck_table_ids(text: str) -> list[str]:
    """The exercise ids in the first column of the 'where learners get stuck' table."""
    assert STUCK_HEADING in text, f"{INSTRUCTORS.name} lost its section {STUCK_HEADING!r}"
    section = text.split(STUCK_HEADING, 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\|\s*(\d\d\.\d+)\b", section, re.M)]


def test_the_instructors_table_covers_every_exercise_and_no_other():
    listed = stuck_table_ids(INSTRUCTORS.read_text())
    ids = [ex.id for _, ex in all_exercises()]
    assert sorted(set(listed)) == sorted(listed), f"an exercise twice in the table: {listed}"
    missing, stale = sorted(set(ids) - set(listed)), sorted(set(listed) - set(ids))
    assert not missing, f"missing from docs/instructors.md's table: {missing}"
    assert not stale, f"in the table but no longer a lesson's exercise: {stale}"


def test_the_table_reader_reads_ids_from_the_first_column_only():
    text = (f"# Guide\n\n{STUCK_HEADING}\n\n| exercise | what |\n|---|---|\n| 02.1 `fetch` | 03.1 is not a row |\n"
            "| 10.2 x | y |\n\n## Next\n\n| 04.1 | another table |\n")
    assert stuck_table_ids(text) == ["02.1", "10.2"]


# ---- lesson 03: the learner writes the query -------------------------------------------------------
QUERY_API = ("readStream", "foreachBatch", "checkpointLocation")
LESSON_03 = next((p for p in LESSONS if p.name.startswith("03_")), None)


def without_hint_arguments(source: str) -> str:
    """A student cell without the hint text the copy passes to todo/require_done: that text
    is the lesson's prose (shown above the cell anyway), not code handed to the learner."""
    tree = python_of(source)
    hints = [ast.get_source_segment(source, kw.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id in ("todo", "require_done")
             for kw in node.keywords if kw.arg == "hint"]
    for text in hints:
        source = source.replace(text, "…")
    return source


def test_the_hint_argument_is_all_that_is_left_out():
    cell = 'x = 1  # readStream\nrequire_done("03.1", f, hint="use `readStream`")\ntodo("03.1", hint="readStream")\n'
    assert without_hint_arguments(cell) == ('x = 1  # readStream\nrequire_done("03.1", f, hint=…)\n'
                                           'todo("03.1", hint=…)\n')


def test_lesson_03s_solutions_hold_the_query_and_its_student_copy_does_not(tmp_path):
    assert LESSON_03 is not None, "lesson 03 is gone"
    nb = notebook(LESSON_03)
    solved = "\n".join(line for ex in exercises_of(LESSON_03)
                       for line in workshop.solution_lines(nb.cells[ex.cell].source))
    assert [api for api in QUERY_API if api not in solved] == [], \
        f"{LESSON_03.name}: the learner's solution blocks must write {QUERY_API}"
    workshop.build(tmp_path, src=NOTEBOOKS)
    student = nbformat.read(tmp_path / LESSON_03.name, as_version=4)
    given = {f"{ex.id}: {api}" for ex in exercises_of(LESSON_03) for api in QUERY_API
             if api in without_hint_arguments(student.cells[ex.cell].source)}
    assert not given, f"the student copy's exercise cells already hold what the learner should type: {sorted(given)}"


def test_the_prediction_rule_sees_every_way_of_binding_a_name():
    tree = python_of("predicted_a = None\npredicted_b = 3\npredicted_c += 1\nx, predicted_d = 1, 2\n"
                     "for predicted_e in []: pass\n(predicted_f := 4)\npredicted_g: int = None\n%time y = 1\n")
    bound = {name: (ast.unparse(value) if value is not None else None) for name, value, _ in names_assigned(tree)}
    assert {k: v for k, v in bound.items() if k.startswith(PREDICTED)} == {
        "predicted_a": "None", "predicted_b": "3", "predicted_c": None, "predicted_d": None, "predicted_e": None,
        "predicted_f": "4", "predicted_g": "None"}
