"""The learner's prediction beside the number the lesson measured.

A predict cell holds ``predicted_x = None  # your guess: <what, unit>``. After the
measurement the lesson calls ``show_prediction("<label>", predicted_x, measured)``, which
prints both, or says that no prediction was made. It never judges the guess and never
raises: checks cells assert on measurements only, so a learner who skips a prediction (or
guesses wildly) still runs to the end.
"""

from __future__ import annotations

from numbers import Real


def format_value(value: object, unit: str = "") -> str:
    """A number with thousands separators and 3 significant digits below 1000 (a unit after
    it); anything else as ``str``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        text = str(value)
    elif float(value).is_integer() and abs(value) < 1e15:
        text = f"{int(value):,}"
    else:
        text = f"{float(value):,.3g}" if abs(value) < 1000 else f"{float(value):,.0f}"
    return f"{text} {unit}" if unit and isinstance(value, Real) and not isinstance(value, bool) else text


def prediction_line(label: str, predicted: object, measured: object, unit: str = "") -> str:
    """``<label>: measured <v> · you predicted <p>`` or ``… · no prediction made``."""
    guess = "no prediction made" if predicted is None else f"you predicted {format_value(predicted, unit)}"
    return f"{label}: measured {format_value(measured, unit)} · {guess}"


def show_prediction(label: str, predicted: object, measured: object, unit: str = "") -> None:
    """Print the measured value beside the learner's prediction (see ``prediction_line``)."""
    print(prediction_line(label, predicted, measured, unit))
