"""Find the JDK every lab JVM runs on.

Cassandra 5.0 runs on Java 11 or 17 only while Kafka 4 and Spark 4 need 17+, and these
machines also carry a newer JDK: so the lab resolves a JDK 17 explicitly instead of
trusting whatever ``java`` or ``JAVA_HOME`` happens to point at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from labsupport.errors import MissingTool

WANTED_MAJOR = 17
_REMEDY = "install it (`apt-get install openjdk-17-jdk-headless`, or run `lab setup`) or set LAB_JAVA_HOME to a JDK 17"


def java_major(java_home: Path) -> int | None:
    """The major version a JDK home declares in its ``release`` file."""
    release = java_home / "release"
    if not release.is_file():
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(errors="replace"), re.M)
    return int(m.group(1)) if m else None


def _candidates(explicit: str) -> list[Path]:
    out = []
    if explicit:
        out.append(Path(explicit))
    if os.environ.get("JAVA_HOME"):
        out.append(Path(os.environ["JAVA_HOME"]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        out.extend(sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()))
    on_path = shutil.which("java")
    if on_path:
        out.append(Path(os.path.realpath(on_path)).parent.parent)
    return out


def find_java_home(explicit: str = "") -> Path:
    """Return a JDK 17 home or raise MissingTool with the remedy."""
    if explicit:
        home = Path(explicit)
        if java_major(home) != WANTED_MAJOR or not (home / "bin" / "java").exists():
            raise MissingTool(f"LAB_JAVA_HOME={explicit} is not a JDK {WANTED_MAJOR}", _REMEDY)
        return home
    for home in _candidates(""):
        if (home / "bin" / "java").exists() and java_major(home) == WANTED_MAJOR:
            return home
    raise MissingTool(f"no JDK {WANTED_MAJOR} found (Cassandra 5.0 needs 11/17, Kafka and Spark 17+)", _REMEDY)


def java_bin(explicit: str = "") -> str:
    return str(find_java_home(explicit) / "bin" / "java")
