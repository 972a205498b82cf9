"""The checkpoint's batch logs, checked before a query starts from them.

Spark records batch N in ``offsets/N`` (the offsets it will read, written before the batch
runs) and ``commits/N`` (written once the sink returned). Each file is a version line
(``v1``) followed by JSON lines. Spark writes them to a temporary file and renames it, so a
``kill -9`` leaves at most a hidden ``.N.<uuid>.tmp`` that Spark ignores; a file damaged
another way (a full disk, a power cut before the data reached the disk, a hand edit) stops
the query at start with a stack trace. Only the newest file of each log can be damaged that
way, since a batch starts only after the previous one's files are complete.

* A damaged newest ``commits/N`` is recovered on its own: it only says "batch N is done", so
  it is moved aside (never deleted) and Spark runs batch N again from the intact
  ``offsets/N``, the same offsets; the sink's writes are idempotent and its
  ``committed_batches`` guard skips a batch already counted, so nothing is counted twice.
* A damaged newest ``offsets/N`` cannot be: Spark would plan batch N again with new end
  offsets, which the guard (keyed by batch id) cannot tell from the first plan. Starting
  stops with one line naming the file and the remedy.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

from labsupport.errors import DataDirProblem

_VERSION = re.compile(r"^v\d+$")


def damage(path: Path, min_lines: int) -> str | None:
    """Why ``path`` is not a whole batch log file, or None when it is."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    lines = text.split("\n")
    if not _VERSION.match(lines[0].lstrip("\x00")):
        return "no version line" if text else "empty"
    body = [ln for ln in lines[1:] if ln.strip()]
    if len(body) < min_lines:
        return f"{len(body)} JSON line(s), at least {min_lines} expected"
    for ln in body:
        try:
            json.loads(ln)
        except ValueError:
            return "a line is not valid JSON (cut short?)"
    return None


def newest(log_dir: Path) -> Path | None:
    """The highest-numbered batch file of ``offsets/`` or ``commits/``."""
    batches = [p for p in log_dir.glob("[0-9]*") if p.name.isdigit()] if log_dir.is_dir() else []
    return max(batches, key=lambda p: int(p.name), default=None)


def set_aside(path: Path, checkpoint: Path) -> Path:
    """Move ``path`` (and Hadoop's ``.N.crc`` beside it) to ``<checkpoint>/damaged/``."""
    dest = checkpoint / "damaged" / f"{path.parent.name}-{path.name}-{int(time.time())}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    path.rename(dest)
    crc = path.with_name(f".{path.name}.crc")
    if crc.exists():
        crc.rename(dest.with_name(f"{dest.name}.crc"))
    return dest


def check(checkpoint: Path, progress: Callable[[str], None] = print) -> None:
    """Recover a damaged newest ``commits/N``; name a damaged newest ``offsets/N``."""
    last_commit = newest(checkpoint / "commits")
    if last_commit is not None and (why := damage(last_commit, min_lines=1)):
        dest = set_aside(last_commit, checkpoint)
        progress(f"stream: the checkpoint's commits/{last_commit.name} was damaged ({why}); moved to {dest}, "
                 f"so batch {last_commit.name} runs again from its recorded offsets (idempotent, counted once)")
    last_plan = newest(checkpoint / "offsets")
    if last_plan is not None and (why := damage(last_plan, min_lines=2)):
        raise DataDirProblem(
            f"stream: the checkpoint's offsets/{last_plan.name} is damaged ({why}): {last_plan}",
            "if the events_per_minute rows of that batch can be recounted, move the file away and start again "
            "(Spark plans the batch anew); otherwise `lab down --purge stream` starts from a fresh checkpoint "
            "and lesson 04 shows what that costs")
