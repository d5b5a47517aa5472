"""Set everything up, then start the app or run the tests. Safe to run again: each step is skipped
when it is already done.

    python3 scripts/dev.py app     # virtual environment, dependencies, data, then the Gradio app
    python3 scripts/dev.py test    # virtual environment, dependencies, then the test suite

Needs only Python 3.11+ and access to the package registry (PyPI). Extra arguments after `test`
go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("CMCD_VENV", ROOT / ".venv"))
PYTHON = VENV / "bin" / "python"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command: str | Path) -> None:
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True)


def ensure_venv() -> None:
    if not PYTHON.exists():
        step(f"creating virtual environment {VENV}")
        venv.create(VENV, with_pip=True)


def ensure_dependencies() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".cmcd-installed"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    step("installing cmcd and its dependencies (first time: torch is large, a few minutes)")
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", ".[test]")
    stamp.write_text(wanted)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("app", "test"):
        print(__doc__)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3, before the venv
        print(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
        return 2
    ensure_venv()
    ensure_dependencies()
    if sys.argv[1] == "app":
        step("building the paired data (first time: about a minute; cached afterwards)")
        run(PYTHON, "-m", "cmcd", "data", "--pair", "all")
        step("starting the app on http://127.0.0.1:7860")
        os.execv(PYTHON, [str(PYTHON), str(ROOT / "app.py")])
    step("running the tests")
    return subprocess.run([str(PYTHON), "-m", "pytest", *sys.argv[2:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
