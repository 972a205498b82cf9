"""Repository rules CI enforces: stripped notebooks, versions that must agree."""

import json
import re
import subprocess

from labsupport.config import REPO_ROOT


def _tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_notebooks_are_committed_without_outputs():
    dirty = []
    for path in _tracked("*.ipynb"):
        nb = json.loads((REPO_ROOT / path).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(path)
                break
    assert dirty == [], f"strip outputs (nbstripout) from: {dirty}"


def test_notebooks_are_valid_nbformat_with_unique_cell_ids():
    import nbformat

    for path in _tracked("notebooks/*.ipynb"):
        nb = json.loads((REPO_ROOT / path).read_text())
        ids = [cell.get("id") for cell in nb["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), f"{path}: every cell needs its own id {ids}"
        nbformat.validate(nbformat.from_dict(nb))


def test_pyspark_pin_matches_the_kafka_connector_jar_version():
    lock = (REPO_ROOT / "requirements" / "lab.lock").read_text()
    pom = (REPO_ROOT / "stack" / "maven" / "pom.xml").read_text()
    pyspark = re.search(r"^pyspark==([\d.]+)", lock, re.M).group(1)
    connector = re.search(r"<spark.version>([\d.]+)</spark.version>", pom).group(1)
    assert pyspark == connector, "spark-sql-kafka must be exactly the pyspark version"


def test_locks_pin_every_package_exactly():
    for name in ("lab", "airflow"):
        lines = [ln for ln in (REPO_ROOT / "requirements" / f"{name}.lock").read_text().splitlines()
                 if ln and not ln.startswith((" ", "#"))]
        assert lines and all("==" in ln for ln in lines), f"{name}.lock has unpinned lines"
