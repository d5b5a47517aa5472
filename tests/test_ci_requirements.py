"""scripts/ci_requirements.py: under CI=true a missing requirement fails the run with one sentence,
elsewhere it is a note; faked by pointing requirements at what does not exist, not by uninstalling."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ci_requirements

ROOT = Path(__file__).resolve().parent.parent
NO_CHROMIUM = ci_requirements.Requirement("chromium", ("chromium",), "the browser tests",
                                          commands=("chromium",))


def _which_without(absent):
    return lambda command: None if command == absent else f"/usr/bin/{command}"


def test_a_missing_command_or_file_is_missing_and_the_rest_is_not(tmp_path):
    present = tmp_path / "present.wav"
    present.write_bytes(b"")
    recordings = ci_requirements.Requirement("real recordings", ("asterisk-core-sounds-en-wav",), "x",
                                             paths=(str(present),))
    gone = ci_requirements.Requirement("full Fashion-MNIST", ("dataset-fashion-mnist",), "y",
                                       paths=(str(tmp_path / "absent.gz"),))
    found = ci_requirements.missing((NO_CHROMIUM, recordings, gone), which=_which_without("chromium"))
    assert found == [NO_CHROMIUM, gone]
    assert ci_requirements.missing((NO_CHROMIUM,), which=_which_without("festival")) == []


def test_without_chromium_ci_fails_with_one_clear_sentence(monkeypatch, capsys):
    monkeypatch.setattr(ci_requirements.shutil, "which", _which_without("chromium"))
    monkeypatch.setenv("CI", "true")
    assert ci_requirements.main((NO_CHROMIUM,)) == 1
    error = capsys.readouterr().err
    assert ("error: chromium not installed, needed by the browser tests: apt-get install chromium"
            in error.splitlines())
    monkeypatch.setenv("CI", "false")
    assert ci_requirements.main((NO_CHROMIUM,)) == 0
    assert "note: chromium not installed" in capsys.readouterr().err


def test_the_script_runs_with_the_system_python_and_names_every_requirement():
    result = subprocess.run(["python3", str(ROOT / "scripts" / "ci_requirements.py")], capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "CI": "false"})
    assert result.returncode == 0, result.stderr
    for requirement in ci_requirements.REQUIREMENTS:
        assert requirement.name in result.stdout + result.stderr


def test_a_test_needing_what_is_missing_skips_but_fails_under_ci(monkeypatch):
    monkeypatch.setattr(ci_requirements.shutil, "which", _which_without("chromium"))
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="chromium not installed"):
        ci_requirements.require("chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="only the CUDA tests may skip"):
        ci_requirements.require("chromium")
    monkeypatch.setattr(ci_requirements.shutil, "which", _which_without("nothing"))
    ci_requirements.require("chromium")  # installed: returns


def test_under_ci_only_the_cuda_tests_may_skip():
    assert ci_requirements.skip_verdict("needs a CUDA GPU", is_cuda_test=True, ci=True) is None
    assert ci_requirements.skip_verdict("no umap", is_cuda_test=False, ci=False) is None
    verdict = ci_requirements.skip_verdict("no umap", is_cuda_test=False, ci=True)
    assert verdict == "skipped under CI=true (no umap); only the CUDA tests may skip in CI"


def test_every_cuda_test_is_marked_so_that_ci_lets_it_skip():
    source = (Path(__file__).parent / "test_cuda.py").read_text()  # not imported: torch is slow to load
    assert "pytestmark = [pytest.mark.cuda," in source


def test_ci_run_checks_the_requirements_before_the_tests():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines.index("python3 scripts/ci_requirements.py") < lines.index("python3 scripts/dev.py test")


def test_probe_that_skips_when_asked():
    """Run by the test below, in a pytest of its own: a test that skips."""
    import os

    if os.environ.get("CMCD_SKIP_PROBE") == "1":
        pytest.skip("asked to skip")


def test_a_skip_fails_the_pytest_run_under_ci():
    probe = f"{Path(__file__).name}::test_probe_that_skips_when_asked"

    def run(ci):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", probe],
                              cwd=Path(__file__).parent, capture_output=True, text=True,
                              env={**__import__("os").environ, "CI": ci, "CMCD_SKIP_PROBE": "1"})

    assert run("false").returncode == 0
    failed = run("true")
    assert failed.returncode == 1 and "skipped under CI=true (asked to skip)" in failed.stdout
