"""What a newcomer relies on: the README's two commands, CI calling them, Spaces metadata."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    front_matter, body = text.split("---\n", 2)[1:]
    first_block = re.search(r"```bash\n(.*?)```", body, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    return front_matter, body, commands


def test_readme_starts_with_spaces_front_matter_then_two_commands():
    front_matter, body, commands = _readme_commands()
    for key in ("sdk: gradio", "app_file: app.py", "sdk_version:", "python_version:",
                "short_description:", "license:"):
        assert key in front_matter
    assert body.lstrip().startswith("```bash")
    assert commands == ["python3 scripts/dev.py app", "python3 scripts/dev.py test"]


def _requirements() -> dict[str, str]:
    """requirements.txt as {name: pinned version}; every line must be an exact pin."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, version = re.fullmatch(r"([\w.-]+)==([\w.]+)", line).groups()
            pins[name.lower()] = version
    return pins


def _ranges() -> dict:
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(dep).name.lower(): Requirement(dep) for dep in deps}


def test_gradio_is_pinned_by_the_front_matter_alone_inside_pyprojects_range():
    front_matter, _, _ = _readme_commands()
    sdk_version = re.search(r"sdk_version: *(\S+)", front_matter).group(1)
    gradio = _ranges()["gradio"]
    assert "mcp" in gradio.extras and gradio.specifier.contains(sdk_version), (gradio, sdk_version)
    assert "gradio" not in _requirements()  # the Space's "Upgrade SDK" button changes one place


def test_pyproject_gives_ranges_and_requirements_pin_a_version_inside_each():
    ranges, pins = _ranges(), _requirements()
    assert sorted(pins) == sorted(name for name in ranges if name != "gradio")
    for name, requirement in ranges.items():
        assert not any(spec.operator == "==" for spec in requirement.specifier), requirement
        if name in pins:
            assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


def test_ci_runs_the_readme_test_command():
    _, _, commands = _readme_commands()
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_credits_every_data_source():
    text = (ROOT / "README.md").read_text()
    for name in ("MNIST", "Fashion-MNIST", "espeak-ng", "asterisk-core-sounds-en-wav", "Zalando"):
        assert name in text


def test_readme_results_are_what_the_results_files_say():
    """Every number in the README's Results section is regenerated from results/ and checkpoints/."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    assert "<!-- results:begin -->" in readme and "<!-- results:end -->" in readme
    generated = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_results.py"),
                                "--print"], capture_output=True, text=True, check=True).stdout
    assert generated.strip() in readme


WHEEL_CHECK = """
import json, sys
from pathlib import Path

import pytest
from cmcd.cli import main
from cmcd import paths
installed = Path(sys.argv[1]).resolve()
code = main(sys.argv[2:])
outside = sorted(name for name, module in list(sys.modules.items())
                 if name.startswith("cmcd") and getattr(module, "__file__", None)
                 and not Path(module.__file__).resolve().is_relative_to(installed))
assert not outside, f"modules loaded from outside the wheel: {outside}"
assert paths.checkpoint_root().resolve().is_relative_to(installed), paths.checkpoint_root()
sys.exit(code)
"""


def test_the_built_wheel_carries_what_it_needs_and_runs_from_another_directory(tmp_path):
    """A regular (non-editable) install: `cmcd pairs` and `cmcd classify` on a shipped example,
    run from an unrelated folder, find the shipped data, teachers and students in the wheel."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "cmcd", source / "cmcd", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                    str(source)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("cmcd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("cmcd/shipped/data/mnist.npz", "cmcd/shipped/checkpoints/teacher-digits-ft.safetensors",
                   "cmcd/shipped/checkpoints/student-digits-depth.json", "cmcd/modalities/audio/__init__.py",
                   "cmcd/app/main.py", "cmcd-0.1.0.dist-info/licenses/LICENSE"):
        assert needed in names, needed
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    example = next((installed / "cmcd" / "shipped" / "examples").glob("digits-depth__7__*.npy"))
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("CMCD_CHECKPOINTS", None)
    for args in (["pairs", "--json"], ["classify", "--pair", "digits-depth", str(example), "--json"]):
        result = subprocess.run([sys.executable, "-c", WHEEL_CHECK, str(installed), *args],
                                cwd=elsewhere, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["label"] == "7"
    app = subprocess.run([sys.executable, "-c", "from cmcd.app import main; main.build_demo(); "
                          "print(main.__file__)"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert app.returncode == 0, app.stderr[-2000:]  # what `cmcd app` launches, from the wheel alone
    assert Path(app.stdout.strip()).resolve().is_relative_to(installed.resolve())


def test_ruff_finds_nothing_to_fix(skip_under_ci):
    """The code base passes the lint rules configured in pyproject.toml ([tool.ruff])."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("ruff") is None:
        skip_under_ci("ruff is not installed (pip install -e '.[test]')")
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
