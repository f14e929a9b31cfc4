"""The READMEs say what the commands do: every option a command accepts is documented where its README runs
it, and every option the README gives it exists; the demo Canvas has assignments for step 7."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from canvas.client import CanvasClient
from canvas.simulator import CanvasSimulator
from canvas.simulator.__main__ import add_demo_assignments
from conversion.services import legacy
from sifclient.powerschool import DistrictSpec

ROOT = Path(__file__).resolve().parents[2]


def options(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return set(re.findall(r"(--[a-z][a-z-]+)", out)) - {"--help"}


def documented(readme: str, module: str) -> set[str]:
    text = (ROOT / readme).read_text()
    start = text.index(f"-m {module}")
    ends = [i for i in (text.find("`", start), text.find("\n#", start)) if i > 0]
    block = text[start : min(ends)]  # the command line itself (inline code, or a code line before its comments)
    return set(re.findall(r"(--[a-z][a-z-]+)", block))


@pytest.mark.parametrize(
    "readme, module", [("sifclient/README.md", "sifclient.zis"), ("canvas/README.md", "canvas.simulator")]
)
def test_a_simulators_readme_gives_exactly_its_options(readme, module):
    assert documented(readme, module) == options(module)


def test_scripts_start_runs_the_simulators_with_options_they_have():
    start = (ROOT / "scripts" / "start").read_text()
    for module in ("sifclient.zis", "canvas.simulator"):
        line = next(line for line in start.splitlines() if f"-m {module}" in line)
        assert set(re.findall(r"(--[a-z][a-z-]+)", line)) <= options(module), module


def test_the_demo_canvas_has_graded_assignments_for_grade_passback():
    spec = DistrictSpec(students=30, schools=1, school_year=2027, seed=2)
    with CanvasSimulator(token="T") as sim, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "legacy.zip"
        legacy.write_legacy_zip(spec, path)
        sim.seed_sis_import(path.read_bytes())
        scores = add_demo_assignments(sim, "T", 2)
        assert scores > 0
        with CanvasClient(sim.url, "T") as client:
            flagged = [a for c in client.iter_courses("self") for a in client.iter_assignments(c.id) if a.post_to_sis]
        assert len(flagged) == 2
