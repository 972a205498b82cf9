"""`notebooks/README.md`, the syllabus, generated from the lessons themselves.

Each lesson's first cell is its header: ``# NN · Title``, and a paragraph
``**Time:** about F minutes in full mode, S in fast mode, plus about R minutes of reading …
**Builds on:** …``, in the lesson's own words (``2½``, ``1¼–3¼`` and "F minutes of reading and
running in full mode (… fast mode measured at S minutes …)" are read too). The
exercises and their difficulty and minutes come from the exercise cells' metadata
(workshop.exercises). Nothing here is typed twice: `lab workshop syllabus` rewrites the
README, and a unit test fails when the committed one differs from what this produces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from labsupport.config import REPO_ROOT
from labsupport.lessons.workshop import LESSON_GLOB, BadExercise, Exercise, exercises, one_line

NOTEBOOKS = REPO_ROOT / "notebooks"
_TITLE = re.compile(r"^#\s+(\d\d)\s+·\s+(.+?)\s*$", re.M)
#: a number of minutes as a header says it: ``25``, ``2½``, ``1¼–3¼``
_NUM = r"\d+[½¼¾]?(?:\s*[–-]\s*\d+[½¼¾]?)?"
_TIME = re.compile(r"\*\*Time:\*\*(.*?)(?:\*\*Builds on:\*\*|$)", re.S)
#: full mode: "about F minutes in full mode", "F minutes of reading and running in full mode"
_FULL = re.compile(rf"({_NUM})\s+minutes?\b[^.;()]*?\bin\s+full\s+mode")
#: fast mode: "S in fast mode", "S minutes in fast mode", "fast mode measured at S minutes"
_FAST = re.compile(rf"({_NUM})\s+(?:minutes?\s+)?in\s+fast\s+mode|fast\s+mode[^.;\d]*?\bat\s+({_NUM})\s+min")
#: reading: "about R minutes of reading", "Reading takes about R minutes"
_READING = re.compile(rf"({_NUM})\s+minutes?\s+of\s+reading(?!\s+and\s+running)"
                      rf"|[Rr]eading\s+takes\s+about\s+({_NUM})\s+minutes?")
_FRACTIONS = {"½": 0.5, "¼": 0.25, "¾": 0.75}
_BUILDS_ON = re.compile(r"\*\*Builds on:\*\*\s*(.+?)\.(?:\s|$)", re.S)  # its first sentence


@dataclass(frozen=True)
class Lesson:
    file: str
    number: str
    title: str
    full_min: str  #: as the header says it: "25", "2½", "1¼–3¼"
    fast_min: str
    reading_min: str  #: "" when the header does not give reading apart
    builds_on: str
    exercises: list[Exercise]


def minutes(text: str) -> float:
    """The larger end of a header's number of minutes: ``1¼–3¼`` -> 3.25 (what a plan must allow)."""
    last = re.split(r"\s*[–-]\s*", text)[-1]
    return float(last.rstrip("½¼¾") or 0) + _FRACTIONS.get(last[-1:], 0.0)


def _first(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    return next(g for g in m.groups() if g) if m else None


def lesson(path: Path) -> Lesson:
    nb = nbformat.read(path, as_version=4)
    header = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    title, time = _TITLE.search(header), _TIME.search(header)
    said = one_line(time.group(1)) if time else ""
    full, fast = _first(_FULL, said), _first(_FAST, said)
    if title is None or full is None or fast is None:
        lacks = ("its # NN · Title line" if title is None else "its **Time:** line" if time is None
                 else "full and fast mode minutes in its **Time:** line")
        raise BadExercise(f"{path.name}, cell 0: the header lacks {lacks}",
                          "start the lesson with '# NN · Title' and '**Time:** about F minutes in full mode, "
                          "S in fast mode, plus about R minutes of reading … **Builds on:** …'")
    builds = _BUILDS_ON.search(header)
    return Lesson(path.name, title.group(1), title.group(2), full, fast, _first(_READING, said) or "",
                  one_line(builds.group(1)) if builds else "", exercises(nb, path.name))


def lessons(src: Path = NOTEBOOKS) -> list[Lesson]:
    return [lesson(p) for p in sorted(src.glob(LESSON_GLOB))]


_HOW_TO = """\
## Exercises: hints, solutions, student copies

The lessons in the repository's `notebooks/` are the **solution** versions: every exercise is
already solved, so each lesson runs top to bottom. An exercise is a markdown cell headed *Exercise NN.k* stating the
task, with two collapsed hints at its end (click them, in order): **Hint 1** says where to look (the API and
its documentation), **Hint 2** the approach in words. Neither is the code. Then comes the code cell to complete.

To work the exercises yourself, use the student copies: `./lab workshop build DIR` writes
every lesson into `DIR` with each solution replaced by `todo("NN.k")`, plus `DIR/solutions/`
(an instructor may have made them a branch: `./lab workshop branches` →
`workshop/exercises`). Open them from `DIR`. Run an exercise cell before you fill it in
and it stops right there with

    ExerciseNotDone: Exercise NN.k is not done yet: <hint 1> — still stuck? Open Hint 2 …

— never further down, and never inside Spark. Replace the `todo(...)` line with your code and
run the cell again. Stuck? Type `%load solutions/NN.k.py` as the cell's only line and run it:
the cell is replaced by the solution (run it once more to execute it).

## When a checks cell fails

Every lesson ends with **Checks**: assertions about what you should have seen, with numbers.
When one fails:

1. Read the assertion's message: it prints the values it compared.
2. `./lab status` in a terminal: a service `crashed` or `stopped` that the lesson needs?
   `./lab up` starts it again with its data; `./lab logs SERVICE` says why it stopped.
3. Re-run the lesson's set-up cell (`reset_to(n)`: it only adds what is missing), then the
   cells after it, in order. A cell skipped or run twice out of order is the usual cause.
4. Still failing? Compare your exercise with `solutions/NN.k.py`; in fast mode
   (`FAST = True` in the first cell) the whole lesson takes a few minutes.

Nothing flows until a lesson starts it: zeros on a dashboard before that are expected.
"""


def render(src: Path = NOTEBOOKS) -> str:
    ls = lessons(src)
    out = ["# Syllabus", "",
           "<!-- generated by `./lab workshop syllabus` from the notebooks' headers and exercise metadata:"
           " edit those, not this file -->", "",
           "Run the lessons in order in JupyterLab (`./lab start` opens this folder at lesson 00); any lesson",
           "can also be opened alone, its set-up cell prepares what it needs (`reset_to(n)`). *Full* is the",
           "lesson with its full-size runs, *fast* the same notebook with `FAST = True` (what CI runs), in",
           "each lesson header's own words: some count the reading in *full*, others give *reading* apart",
           "(the header says which). Exercise minutes are on top.", "",
           "| lesson | full | fast | reading | exercises | builds on |", "|---|---|---|---|---|---|"]
    for lesson_ in ls:
        exs = ", ".join(f"{e.id} ({e.difficulty}, {e.minutes} min)" for e in lesson_.exercises) or "—"
        reading = f"{lesson_.reading_min} min" if lesson_.reading_min else "—"
        out.append(f"| [{lesson_.number} · {lesson_.title}]({lesson_.file}) | {lesson_.full_min} min | "
                   f"{lesson_.fast_min} min | {reading} | {exs} | {lesson_.builds_on or '—'} |")
    out.append(f"| **all** | **about {round(sum(minutes(x.full_min) for x in ls))} min** | "
               f"**about {round(sum(minutes(x.fast_min) for x in ls))} min** | "
               f"**about {round(sum(minutes(x.reading_min) for x in ls if x.reading_min))} min** | "
               f"**{sum(e.minutes for x in ls for e in x.exercises)} min** of exercises | |")
    out += ["", "## The exercises", "", "| exercise | lesson | difficulty | minutes |", "|---|---|---|---|"]
    for lesson_ in ls:
        for e in lesson_.exercises:
            out.append(f"| {e.id} · {e.title} | [{lesson_.number}]({lesson_.file}) | {e.difficulty} | {e.minutes} |")
    return "\n".join(out) + "\n\n" + _HOW_TO


def write(src: Path = NOTEBOOKS) -> Path:
    target = src / "README.md"
    target.write_text(render(src))
    return target
