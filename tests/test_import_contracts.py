"""The import contracts of pyproject.toml's [tool.importlinter] hold (issue 19).

They keep sifclient/ and canvas/ free of Django and the product, models free of services and views, services
free of views, the job tasks above the schedule above jobs, and the setup aids above the diagnostics. The
same check runs in CI as `lint-imports --no-cache`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept():
    # A process of its own: lint-imports configures logging and puts its working directory on sys.path.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
