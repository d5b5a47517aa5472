"""Set everything up, then start the app or run the tests. Safe to run again: each step is skipped
when it is already done.

    python3 scripts/dev.py app     # virtual environment, dependencies, data, then the Gradio app
    python3 scripts/dev.py test    # virtual environment, dependencies, then the test suite
    python3 scripts/dev.py setup   # virtual environment and dependencies only

Needs Python 3.11+, access to the package registry (PyPI) and the Debian speech engines in
SPEECH_PACKAGES (installed with apt-get when run as root; otherwise it says what to install).
Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("CMCD_VENV", ROOT / ".venv"))
PYTHON = VENV / "bin" / "python"
SPEECH_PACKAGES = ("flite", "festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts")
FESTIVAL_VOICES = Path("/usr/share/festival/voices")


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*command: str | Path) -> None:
    subprocess.run([str(part) for part in command], cwd=ROOT, check=True)


def ensure_venv() -> None:
    if not PYTHON.exists():
        step(f"creating virtual environment {VENV}")
        venv.create(VENV, with_pip=True)


def space_gradio() -> str:
    """The Gradio a Space installs: the README front matter's sdk_version, with the MCP extra."""
    version = re.search(r"^sdk_version: *(\S+)", (ROOT / "README.md").read_text(), re.M).group(1)
    return f"gradio[mcp]=={version}"


def ensure_dependencies() -> None:
    """cmcd with the tested set: requirements.txt's pins and the Space's Gradio as constraints."""
    pinned = [(ROOT / name).read_bytes() for name in ("pyproject.toml", "requirements.txt")]
    wanted = hashlib.sha256(b"".join(pinned) + space_gradio().encode()).hexdigest()
    stamp = VENV / ".cmcd-installed"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    step("installing cmcd and its dependencies (first time: torch is large, a few minutes)")
    # --no-compile halves the install (torch's thousands of files); Python compiles what it imports.
    run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile",
        "-c", "requirements.txt", "-e", ".[test]", space_gradio())
    stamp.write_text(wanted)


def speech_engines_installed() -> bool:
    return bool(shutil.which("flite") and shutil.which("festival")) and all(
        (FESTIVAL_VOICES / voice).is_dir()
        for voice in ("english/kal_diphone", "english/ked_diphone", "us/cmu_us_slt_arctic_hts"))


def ensure_speech_engines() -> bool:
    """The spoken digits' voices: apt-get them when root, else say which packages are missing."""
    if speech_engines_installed():
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        step(f"installing the speech engines: {' '.join(SPEECH_PACKAGES)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *SPEECH_PACKAGES], check=True, env=env)
        return speech_engines_installed()
    print("The spoken digits need the Debian speech engines; install them first:\n"
          f"    sudo apt-get install {' '.join(SPEECH_PACKAGES)}")
    return False


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("app", "test", "setup"):
        print(__doc__)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3, before the venv
        print(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
        return 2
    if not ensure_speech_engines():
        return 1
    ensure_venv()
    ensure_dependencies()
    if sys.argv[1] == "setup":
        return 0
    if sys.argv[1] == "app":
        step("building the paired data (first time: about a minute; cached afterwards)")
        run(PYTHON, "-m", "cmcd", "data", "--pair", "all")
        step("starting the app on http://127.0.0.1:7860")
        os.execv(PYTHON, [str(PYTHON), str(ROOT / "app.py")])
    step("running the tests")
    return subprocess.run([str(PYTHON), "-m", "pytest", *sys.argv[2:]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
