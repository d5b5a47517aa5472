"""scripts/space_rehearsal.py's parts that need no Space: what it copies, how it checks the Debian
packages, what it installs, and that its plan covers every endpoint and tool of the app. (CI runs
the rehearsal itself, alongside the tests: .ci/run.)"""

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rehearsal():
    spec = importlib.util.spec_from_file_location("space_rehearsal",
                                                  ROOT / "scripts" / "space_rehearsal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_space_folder_holds_exactly_the_dry_runs_files(rehearsal, tmp_path):
    copied = rehearsal.copy_space_files(tmp_path)
    on_disk = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.glob("**/*")
                     if path.is_file())
    assert on_disk == sorted(copied)
    assert copied == [entry["path"] for entry in rehearsal.deploy_space.space_files()]
    assert (tmp_path / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()


def test_it_installs_what_the_space_builder_installs(rehearsal):
    wanted = rehearsal.space_requirements(ROOT)
    assert wanted[:2] == ["-r", str(ROOT / "requirements.txt")]
    assert wanted[2].startswith("gradio[mcp]==") and wanted[3] == "spaces"
    assert rehearsal.debian_packages(ROOT)[:2] == ["flite", "festival"]


def test_a_missing_debian_package_is_found(rehearsal, monkeypatch):
    def dpkg_query(command, **kwargs):
        installed = command[-1] != "not-a-package"
        return subprocess.CompletedProcess(command, 0, "install ok installed" if installed else "")

    monkeypatch.setattr(rehearsal.subprocess, "run", dpkg_query)
    assert rehearsal.missing_packages(["flite", "not-a-package"]) == ["not-a-package"]


def test_the_space_environment_is_a_spaces_not_ours(rehearsal, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("CMCD_CACHE", "/a/warm/cache")
    env = rehearsal.space_environment(tmp_path / "space", 7861)
    assert env["SPACE_ID"] and env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_SERVER_PORT"] == "7861"
    assert env["CMCD_CACHE"] == str(tmp_path / "empty-cache") and "PYTHONPATH" not in env


def test_the_plan_calls_every_endpoint_and_tool_each_pair_included(rehearsal):
    import app
    from cmcd.modalities import pairs

    demo = app.build_demo()
    endpoints = sorted(f"/{fn.api_name}" for fn in demo.fns.values()
                       if isinstance(fn.api_name, str) and fn.api_visibility != "private")
    assert [name for name in endpoints if not name.startswith("/load_example")] == sorted(
        rehearsal.CLIENT_CALLS)  # gr.Examples' endpoints get rehearsal.EXAMPLE_LOADER
    tool_pairs = {call["pair"] for tool, plan in rehearsal.MCP_CALLS.items() for call in plan
                  if tool != "run_distillation"}
    assert tool_pairs == set(pairs.PAIRS)
    distilled = {call["pair"] for call in rehearsal.MCP_CALLS["run_distillation"]}
    assert {pairs.get_spec(pair).target.name for pair in distilled} == {"sketch", "depth", "audio"}
    values = [value for plan in rehearsal.MCP_CALLS.values() for call in plan for value in call.values()]
    values += [value for plan in rehearsal.CLIENT_CALLS.values() for _, arguments in plan
               for value in arguments]
    for value in values:  # every shipped example it sends is still shipped
        if isinstance(value, str) and value.startswith("file:"):
            assert (ROOT / rehearsal.EXAMPLES / value[5:]).exists(), value
