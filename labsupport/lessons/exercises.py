"""What an unsolved exercise does in a learner's notebook: stop, in the cell that holds
it, with ``Exercise NN.k is not done yet: <hint>``.

The student copies (``workshop.student_version``) replace each solution with a call to
``todo("NN.k")``. When the solution sat inside a function, the cell also calls
``require_done`` right after the function's definition: a function handed to Spark
(``foreachBatch``) must fail *here*, before the query starts, not as a Java stack trace
from a Python callback thread two cells later. ``require_done`` looks for a ``todo``
call left in the function's code, so it passes the moment the learner replaces it.
"""

from __future__ import annotations

from types import CodeType
from typing import Callable, NoReturn


class ExerciseNotDone(NotImplementedError):
    """An exercise whose ``todo(...)`` is still in place."""

    def __init__(self, exercise: str, hint: str | None = None):
        self.exercise, self.hint = exercise, hint
        super().__init__(f"Exercise {exercise} is not done yet: "
                         f"{hint or 'replace the todo(...) line with your code (the hint is above the cell)'}")


def todo(exercise: str, hint: str | None = None) -> NoReturn:
    """The placeholder a student copy puts where the solution was."""
    raise ExerciseNotDone(exercise, hint)


def _calls_todo(code: CodeType) -> bool:
    return todo.__name__ in code.co_names or any(
        isinstance(const, CodeType) and _calls_todo(const) for const in code.co_consts)


def require_done(exercise: str, *functions: Callable, hint: str | None = None) -> None:
    """Raise ExerciseNotDone if any of ``functions`` still calls ``todo``."""
    if any(_calls_todo(f.__code__) for f in functions):
        raise ExerciseNotDone(exercise, hint)
