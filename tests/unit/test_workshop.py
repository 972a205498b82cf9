"""Student copies, their refusals, the in-notebook stop and the generated syllabus.

The exercise-cell behaviour is checked by executing the generated cells with plain
``exec`` (no kernel, no services): the cells below are pure Python."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from labsupport.lessons import exercises, syllabus, workshop
from labsupport.lessons.exercises import ExerciseNotDone
from labsupport.lessons.workshop import BadExercise

HINT = "<details><summary>Hint</summary>\n\nCall `write` first, then **count**.\n</details>"
TWO_HINTS = ("<details><summary>Hint 1 · where to look</summary>\n\n`list.append`, in the\n"
             "[tutorial](https://docs.python.org/3/tutorial/datastructures.html).\n</details>\n"
             "<details><summary>Hint 2 · the approach</summary>\n\nRemember each batch id, <b>then</b> return.\n"
             "</details>")

FUNCTION_CELL = '''calls = []


def write_batch(df, batch_id):
    rows = len(df)
    ### BEGIN SOLUTION
    calls.append(batch_id)
    ### END SOLUTION
    return rows


result = "defined"
'''

TOPLEVEL_CELL = '''x = 1
### BEGIN SOLUTION
answer = x + 41
### END SOLUTION
print(answer)
'''


def exercise_md(ex_id: str = "07.1", hint: str = HINT) -> str:
    return f"Some prose.\n\n### Exercise {ex_id} · Write it\n\nDo the thing.\n\n{hint}"


def lesson(*cells, header="# 07 · A lesson\n\n**Time:** about 9 minutes in full mode, 2 in fast mode. "
                          "**Builds on:** lesson 06. More."):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(header), nbformat.v4.new_code_cell("FAST = False"), *cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"x{i:02d}"
    return nb


def exercise_cell(source: str = FUNCTION_CELL, ex_id: str = "07.1", **meta):
    return nbformat.v4.new_code_cell(source, metadata={"exercise": {"id": ex_id, "difficulty": "easy",
                                                                    "minutes": 5, **meta}})


def good_lesson():
    return lesson(nbformat.v4.new_markdown_cell(exercise_md("07.1")), exercise_cell(FUNCTION_CELL, "07.1"),
                  nbformat.v4.new_markdown_cell(exercise_md("07.2")), exercise_cell(TOPLEVEL_CELL, "07.2"))


def write(tmp_path: Path, nb, name="07_a_lesson.ipynb") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    nbformat.write(nb, src / name)
    return src


# ---- the student cell -------------------------------------------------------------------

def test_function_exercise_stops_in_its_own_cell_with_the_hint():
    ex = workshop.exercises(good_lesson(), "07_a_lesson.ipynb")[0]
    cell = workshop.student_cell(FUNCTION_CELL, ex, "here")
    assert "calls.append" not in cell and 'todo("07.1")' in cell and "%load solutions/07.1.py" in cell
    namespace: dict = {}
    with pytest.raises(ExerciseNotDone) as err:
        exec(cell, namespace)  # noqa: S102 - the generated cell, as the kernel runs it
    assert str(err.value) == "Exercise 07.1 is not done yet: Call `write` first, then **count**."
    assert "result" not in namespace, "the cell must stop right after the def, before anything uses it"


def test_two_hint_levels_the_stop_gives_the_first_and_points_to_the_second():
    nb = lesson(nbformat.v4.new_markdown_cell(exercise_md("07.1", TWO_HINTS)), exercise_cell(FUNCTION_CELL, "07.1"))
    ex = workshop.exercises(nb, "07_a_lesson.ipynb")[0]
    assert ex.levels == 2
    with pytest.raises(ExerciseNotDone) as err:
        exec(workshop.student_cell(FUNCTION_CELL, ex, "here"), {})  # noqa: S102
    assert str(err.value) == ("Exercise 07.1 is not done yet: `list.append`, in the tutorial "
                              "(https://docs.python.org/3/tutorial/datastructures.html). — still stuck? "
                              "Open Hint 2 (the approach) in the exercise's cell above.")
    assert "Remember" not in str(err.value)


def test_hints_are_read_with_their_levels_and_titles_in_plain_text():
    found = workshop.hints(exercise_md(hint=TWO_HINTS))
    assert [(h.level, h.title) for h in found] == [(1, "where to look"), (2, "the approach")]
    assert found[1].text == "Remember each batch id, then return."
    assert [(h.level, h.title) for h in workshop.hints(HINT)] == [(0, "")]


def test_function_exercise_passes_once_the_todo_is_replaced():
    ex = workshop.exercises(good_lesson(), "07_a_lesson.ipynb")[0]
    cell = workshop.student_cell(FUNCTION_CELL, ex, "here")
    solved = cell.replace('todo("07.1")', "calls.append(batch_id)")
    namespace: dict = {}
    exec(solved, namespace)  # noqa: S102
    assert namespace["result"] == "defined" and namespace["write_batch"]([1, 2], 7) == 2
    assert namespace["calls"] == [7]


def test_toplevel_exercise_raises_where_the_solution_was():
    ex = workshop.exercises(good_lesson(), "07_a_lesson.ipynb")[1]
    cell = workshop.student_cell(TOPLEVEL_CELL, ex, "here")
    assert "require_done" not in cell
    namespace: dict = {}
    with pytest.raises(ExerciseNotDone, match=r"^Exercise 07\.2 is not done yet: Call `write` first"):
        exec(cell, namespace)  # noqa: S102
    assert namespace["x"] == 1 and "answer" not in namespace


def test_nested_function_counts_as_not_done():
    def outer():
        def inner():
            exercises.todo("01.1")
        return inner

    def done():
        return 1

    with pytest.raises(ExerciseNotDone):
        exercises.require_done("01.1", done, outer, hint="h")
    exercises.require_done("01.1", done)


def test_solution_file_is_the_cell_without_markers():
    ex = workshop.exercises(good_lesson(), "07_a_lesson.ipynb")[0]
    text = workshop.solution_source(FUNCTION_CELL, ex)
    assert text.startswith("# Exercise 07.1 · Write it — a solution\n")
    assert "SOLUTION" not in text and "    calls.append(batch_id)\n    return rows" in text


# ---- refusals: notebook and cell named, nothing written ------------------------------------

@pytest.mark.parametrize("cells, message", [
    ([nbformat.v4.new_markdown_cell(exercise_md()), exercise_cell("### BEGIN SOLUTION\nx = 1\n")],
     r"07_a_lesson.ipynb, cell 3 \(id x03\): ### BEGIN SOLUTION on line 1 is never closed"),
    ([nbformat.v4.new_markdown_cell(exercise_md()), exercise_cell("x = 1\n### END SOLUTION\n")],
     r"cell 3 \(id x03\): ### END SOLUTION on line 2 without"),
    ([nbformat.v4.new_markdown_cell(exercise_md()),
      exercise_cell("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx=1\n### END SOLUTION\n### END SOLUTION\n")],
     r"cell 3 \(id x03\): nested"),
    ([nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nin prose\n### END SOLUTION")],
     r"cell 2 \(id x02\): solution markers in a markdown cell"),
    ([nbformat.v4.new_markdown_cell(exercise_md(hint="")), exercise_cell()],
     r"cell 2 \(id x02\): exercise 07.1 has no hint"),
    ([nbformat.v4.new_markdown_cell(exercise_md(hint=TWO_HINTS.split("\n<details>")[0])), exercise_cell()],
     r"cell 2 \(id x02\): exercise 07.1 has hints numbered \[1\]"),
    ([nbformat.v4.new_markdown_cell(exercise_md(hint=TWO_HINTS.replace("Hint 1", "Hint 3"))), exercise_cell()],
     r"exercise 07.1 has hints numbered \[3, 2\]"),
    ([nbformat.v4.new_markdown_cell(exercise_md(hint=TWO_HINTS.replace("Remember each batch id, <b>then</b> return.",
                                                                       "<i> </i>"))), exercise_cell()],
     r"exercise 07.1 has an empty hint"),
    ([nbformat.v4.new_markdown_cell("just prose"), exercise_cell()],
     r"cell 3 \(id x03\): exercise 07.1 is not preceded by a markdown cell headed"),
    ([nbformat.v4.new_markdown_cell(exercise_md()), nbformat.v4.new_code_cell(FUNCTION_CELL)],
     r"cell 3 \(id x03\): a solution without exercise metadata"),
    ([nbformat.v4.new_markdown_cell(exercise_md("07.2")), exercise_cell(ex_id="07.2")],
     r"exercise id '07.2', expected '07.1'"),
    ([nbformat.v4.new_markdown_cell(exercise_md()), exercise_cell(difficulty="tricky")],
     r"difficulty 'tricky'"),
    ([nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})],
     r"cell 2 \(id x02\): a cell tagged 'solution'"),
])
def test_bad_markers_are_refused_and_nothing_is_written(tmp_path, cells, message):
    src = write(tmp_path, lesson(*cells))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("untouched")
    with pytest.raises(BadExercise, match=message):
        workshop.build(dest, src=src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "src"], "no temp folder left behind"
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


# ---- the build ---------------------------------------------------------------------------

def test_build_writes_copies_and_solutions_byte_identical_twice(tmp_path):
    src = write(tmp_path, good_lesson())
    (src / "README.md").write_text("# syllabus\n")
    first, second = tmp_path / "a", tmp_path / "b"
    workshop.build(first, src=src)
    workshop.build(second, src=src)
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert files == ["07_a_lesson.ipynb", "README.md", "solutions/07.1.py", "solutions/07.2.py"]
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    student = nbformat.read(first / "07_a_lesson.ipynb", as_version=4)
    nbformat.validate(student)
    assert student.cells[3].metadata["exercise"]["id"] == "07.1" and student.cells[3].id == "x03"
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_rebuild_drops_solutions_of_removed_exercises(tmp_path):
    src = write(tmp_path, good_lesson())
    dest = tmp_path / "dest"
    workshop.build(dest, src=src)
    nbformat.write(lesson(nbformat.v4.new_markdown_cell(exercise_md()), exercise_cell()), src / "07_a_lesson.ipynb")
    workshop.build(dest, src=src)
    assert sorted(p.name for p in (dest / "solutions").iterdir()) == ["07.1.py"]


def test_every_lesson_builds_and_each_exercise_is_checked_where_it_is():
    """The real notebooks: conventions hold, and every student exercise cell stops itself."""
    files = workshop.render(syllabus.NOTEBOOKS)
    for path in sorted(syllabus.NOTEBOOKS.glob(workshop.LESSON_GLOB)):
        original = nbformat.read(path, as_version=4)
        student = nbformat.reads(files[path.name], as_version=4)
        for ex in workshop.exercises(original, path.name):
            cell = student.cells[ex.cell].source
            assert "SOLUTION" not in cell and f'todo("{ex.id}"' in cell
            assert f"solutions/{ex.id}.py" in files


# ---- the syllabus --------------------------------------------------------------------------

def test_committed_syllabus_is_what_the_generator_writes():
    assert (syllabus.NOTEBOOKS / "README.md").read_text() == syllabus.render(), \
        "notebooks/README.md is out of date: run ./lab workshop syllabus"


def test_syllabus_reads_header_and_exercise_metadata(tmp_path):
    src = write(tmp_path, good_lesson())
    text = syllabus.render(src)
    assert ("| [07 · A lesson](07_a_lesson.ipynb) | 9 min | 2 min | — | 07.1 (easy, 5 min), 07.2 (easy, 5 min) "
            "| lesson 06 |") in text
    assert "| 07.2 · Write it | [07](07_a_lesson.ipynb) | easy | 5 |" in text


def test_syllabus_reads_the_time_said_with_what_it_covers(tmp_path):
    header = ("# 07 · A lesson\n\n**Time:** about 25 minutes of reading and running in full mode (about 6 in "
              "fast mode), plus about\n20 minutes for the two exercises. **Builds on:** lesson 06. More.")
    src = write(tmp_path, lesson(header=header))
    assert "| [07 · A lesson](07_a_lesson.ipynb) | 25 min | 6 min | — | — | lesson 06 |" in syllabus.render(src)


def test_syllabus_reads_fractions_ranges_and_reading_apart(tmp_path):
    header = ("# 07 · A lesson\n\n**Time:** the cells run in about 3½ minutes in full mode (192 s measured) and "
              "1¼–3¼ in fast mode (measured); add about 15 minutes of reading and 45 for the exercises. "
              "**Builds on:** lesson 06. More.")
    src = write(tmp_path, lesson(header=header))
    text = syllabus.render(src)
    assert "| [07 · A lesson](07_a_lesson.ipynb) | 3½ min | 1¼–3¼ min | 15 min | — | lesson 06 |" in text
    assert "| **all** | **about 4 min** | **about 3 min** | **about 15 min** |" in text
    assert syllabus.minutes("1¼–3¼") == 3.25 and syllabus.minutes("25") == 25


def test_syllabus_refuses_a_lesson_without_its_time(tmp_path):
    src = write(tmp_path, lesson(header="# 07 · A lesson\n\nNo time given."))
    with pytest.raises(BadExercise, match=r"07_a_lesson.ipynb, cell 0: the header lacks its \*\*Time:\*\* line"):
        syllabus.render(src)


# ---- a student copy as the lesson (the workshop/exercises branch) ---------------------------

def test_student_copies_are_lessons_whose_exercises_are_unsolved(tmp_path):
    """Built again from the copies themselves (what the exercises branch holds), the build
    gives the same files; the syllabus reads the same exercises; the first one is where a
    run stops."""
    src = write(tmp_path, good_lesson())
    (src / "README.md").write_text(syllabus.render(src))
    first, second = tmp_path / "a", tmp_path / "b"
    workshop.build(first, src=src)
    workshop.build(second, src=first)
    for rel in ["07_a_lesson.ipynb", "README.md", "solutions/07.1.py", "solutions/07.2.py"]:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    student = nbformat.read(first / "07_a_lesson.ipynb", as_version=4)
    assert [(e.id, e.solved) for e in workshop.exercises(student, "07_a_lesson.ipynb")] == [("07.1", False),
                                                                                          ("07.2", False)]
    assert workshop.first_unsolved(student, "07_a_lesson.ipynb").cell == 3
    assert workshop.first_unsolved(good_lesson(), "07_a_lesson.ipynb") is None
    assert syllabus.render(first) == syllabus.render(src)


def test_a_student_copy_without_its_solution_file_is_refused(tmp_path):
    src = write(tmp_path, good_lesson())
    copies = tmp_path / "copies"
    workshop.build(copies, src=src)
    (copies / "solutions" / "07.2.py").unlink()
    with pytest.raises(BadExercise, match=r"07_a_lesson.ipynb, cell 5: exercise 07.2 is a student copy \(todo\) "
                                          r"without its solutions/07.2.py"):
        workshop.build(tmp_path / "again", src=copies)
    assert not (tmp_path / "again").exists()


def test_exercise_metadata_without_a_solution_or_a_todo_is_refused(tmp_path):
    src = write(tmp_path, lesson(nbformat.v4.new_markdown_cell(exercise_md()), exercise_cell("x = 1\n")))
    with pytest.raises(BadExercise, match=r"cell 3 \(id x03\): exercise metadata but no ### BEGIN SOLUTION block"):
        workshop.build(tmp_path / "dest", src=src)
