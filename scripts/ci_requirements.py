"""What the full test suite needs from the system, checked in one place.

    python3 scripts/ci_requirements.py    # lists what is missing; exits 1 under CI=true if anything is

Under CI (the environment variable CI set to true) a missing requirement fails the run with one
sentence per requirement naming its Debian package; elsewhere it is a note, and the tests that need
it skip. The tests use `require(name)` (through the `require` fixture of tests/conftest.py) and
`skip_under_ci`, so that CI can never turn green by skipping them; only the CUDA tests may skip
under CI. Standard library only: .ci/run calls it with the system Python, before the venv exists.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FESTIVAL_VOICES = Path("/usr/share/festival/voices")


@dataclass(frozen=True)
class Requirement:
    name: str
    packages: tuple[str, ...]  # the Debian packages that provide it
    needed_by: str
    commands: tuple[str, ...] = ()  # found on PATH
    paths: tuple[str, ...] = ()  # files or folders that must exist


REQUIREMENTS = (
    Requirement("speech engines", ("flite", "festival", "festvox-kallpc16k", "festvox-kdlpc16k",
                                   "festvox-us-slt-hts"),
                "the spoken-digit bank (every audio test)", commands=("flite", "festival"),
                paths=tuple(str(FESTIVAL_VOICES / voice) for voice in
                            ("english/kal_diphone", "english/ked_diphone", "us/cmu_us_slt_arctic_hts"))),
    Requirement("real recordings", ("asterisk-core-sounds-en-wav",), "the real-recordings test",
                paths=("/usr/share/asterisk/sounds/en_US_f_Allison/digits/9.wav",)),
    Requirement("full Fashion-MNIST", ("dataset-fashion-mnist",), "the full-Fashion test",
                paths=("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",)),
    Requirement("chromium", ("chromium",), "the browser tests", commands=("chromium",)),
)


def under_ci() -> bool:
    """Whether this runs under CI (CI=true, as GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def is_missing(requirement: Requirement, which: Callable[[str], str | None] | None = None) -> bool:
    which = which or shutil.which
    return (any(which(command) is None for command in requirement.commands)
            or any(not Path(path).exists() for path in requirement.paths))


def missing(requirements=REQUIREMENTS,
            which: Callable[[str], str | None] | None = None) -> list[Requirement]:
    return [requirement for requirement in requirements if is_missing(requirement, which)]


def explain(requirement: Requirement) -> str:
    """One sentence: what is missing, what needs it, and how to install it."""
    return (f"{requirement.name} not installed, needed by {requirement.needed_by}: "
            f"apt-get install {' '.join(requirement.packages)}")


def by_name(name: str) -> Requirement:
    found = [requirement for requirement in REQUIREMENTS if requirement.name == name]
    if not found:
        raise KeyError(f"no requirement named {name!r}; known: {', '.join(r.name for r in REQUIREMENTS)}")
    return found[0]


def skip_under_ci(reason: str) -> None:
    """Skip the calling test, except under CI, where what it lacks fails it instead."""
    import pytest

    if under_ci():
        pytest.fail(f"{reason} (CI=true: only the CUDA tests may skip)", pytrace=False)
    pytest.skip(reason)


def require(name: str) -> None:
    """For a test: return when requirement `name` is installed, else skip (fail under CI)."""
    requirement = by_name(name)
    if is_missing(requirement):
        skip_under_ci(explain(requirement))


def skip_verdict(reason: str, is_cuda_test: bool, ci: bool) -> str | None:
    """Why a skipped test fails the run instead (None: the skip stands). Under CI only the CUDA
    tests may skip."""
    if not ci or is_cuda_test:
        return None
    return f"skipped under CI=true ({reason}); only the CUDA tests may skip in CI"


def main(requirements=REQUIREMENTS) -> int:
    absent = missing(requirements)
    for requirement in absent:
        print(f"{'error' if under_ci() else 'note'}: {explain(requirement)}", file=sys.stderr)
    if absent and under_ci():
        print("CI=true: a missing requirement fails the run (the tests that need it may not skip)",
              file=sys.stderr)
        return 1
    if absent:
        print("the tests that need them will skip (under CI=true they would fail)", file=sys.stderr)
    else:
        print(f"system requirements installed: {', '.join(r.name for r in requirements)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
