"""scripts/deploy_space.py: the dry run lists what the Space needs and nothing else, offline; the
real path hands the same patterns to huggingface_hub (a stand-in HfApi here, never the hub)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "deploy_space.py"
NEEDED = ("app.py", "README.md", "LICENSE", "requirements.txt", "packages.txt", "cmcd/__init__.py",
          "cmcd/shipped/checkpoints/teacher-digits-ft.safetensors",
          "cmcd/shipped/checkpoints/student-digits-depth.json", "cmcd/shipped/data/mnist.npz",
          "cmcd/shipped/data/fashion-subset.npz", "results/paper.json", "results/theory.json",
          "results/inputs.json")
JUNK = ("cmcd/__pycache__/paths.cpython-312.pyc", "cmcd/shipped/data/.mnist.npz.x1.tmp",
        ".venv/lib/site.py", "runs/mine/student.safetensors", "test-artifacts/shot.png",
        "build/lib/cmcd/paths.py", "cmcd.egg-info/PKG-INFO", ".git/HEAD", ".pytest_cache/v/x",
        "results/cpu/paper.json", "results/figures/plotly.min.js", "tests/test_core.py",
        "cmcd/.cache/huggingface/x", "scripts/dev.py", "pyproject.toml")


def load_script():
    spec = importlib.util.spec_from_file_location("deploy_space", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def deploy_space():
    return load_script()


@pytest.fixture
def checkout(tmp_path):
    """A checkout with everything the Space needs plus every kind of file it must not get."""
    for relpath in NEEDED + JUNK:
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_bytes(b"x" * len(relpath))
    return tmp_path


class StandInHfApi:
    """Records what the script asks of the hub."""
    calls = []

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


@pytest.fixture
def stand_in_hub(monkeypatch):
    StandInHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", StandInHfApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_stand_in")
    return StandInHfApi.calls


def test_dry_run_lists_what_the_space_needs_offline(deploy_space, no_network, capsys):
    assert deploy_space.main(["--repo-id", "someone/cmcd", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    paths = [entry["path"] for entry in report["files"]]
    for needed in NEEDED:
        assert needed in paths, needed
    assert not [path for path in paths if path.startswith(("tests/", "runs/", ".venv/", "results/cpu/"))
                or "__pycache__" in path or path.endswith((".pyc", ".tmp"))]
    assert report["total_bytes"] == sum(entry["bytes"] for entry in report["files"])
    assert all(entry["bytes"] == (ROOT / entry["path"]).stat().st_size for entry in report["files"])
    assert not no_network


def test_only_the_needed_files_of_a_checkout_go_up(deploy_space, checkout):
    assert [entry["path"] for entry in deploy_space.space_files(checkout)] == sorted(NEEDED)


def test_the_dry_run_is_what_upload_folder_would_add(deploy_space, checkout, no_network, monkeypatch):
    """huggingface_hub's own selection step, given the patterns the script passes to upload_folder
    (plus the defaults upload_folder appends), picks the very files of the dry run."""
    monkeypatch.setattr(huggingface_hub.HfApi, "_validate_yaml", lambda *args, **kwargs: None)
    patterns = deploy_space.space_patterns()
    patterns["ignore_patterns"] += DEFAULT_IGNORE_PATTERNS
    additions = huggingface_hub.HfApi(token=False)._prepare_upload_folder_additions(
        checkout, "", repo_type="space", **patterns)
    dry_run = [entry["path"] for entry in deploy_space.space_files(checkout)]
    assert [operation.path_in_repo for operation in additions] == dry_run
    assert not no_network


def test_the_dry_run_imports_nothing_that_talks_to_the_hub():
    check = ("import sys, runpy\n"
             f"sys.argv = ['deploy_space.py', '--repo-id', 'someone/cmcd', '--dry-run', '--json']\n"
             "try:\n"
             f"    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
             "except SystemExit as exit:\n"
             "    assert exit.code == 0, exit.code\n"
             "loaded = [name for name in ('huggingface_hub.hf_api', 'httpx', 'requests', 'hf_xet')\n"
             "          if name in sys.modules]\n"
             "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["files"]


def test_deploy_creates_the_space_and_uploads_with_the_dry_run_patterns(deploy_space, stand_in_hub,
                                                                        no_network, capsys):
    assert deploy_space.main(["--repo-id", "someone/cmcd", "--private", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["url"] == "https://huggingface.co/spaces/someone/cmcd"
    (_, init), (_, create), (_, upload) = stand_in_hub
    assert init == {"token": "hf_stand_in"}
    assert create == {"repo_id": "someone/cmcd", "repo_type": "space", "space_sdk": "gradio",
                      "private": True, "space_hardware": "zero-a10g", "exist_ok": True}
    assert upload["repo_id"] == "someone/cmcd" and upload["repo_type"] == "space"
    assert Path(upload["folder_path"]) == ROOT
    on_disk = sorted(path.relative_to(ROOT).as_posix() for path in ROOT.glob("**/*") if path.is_file())
    uploaded = filter_repo_objects(on_disk, allow_patterns=upload["allow_patterns"],
                                   ignore_patterns=upload["ignore_patterns"] + DEFAULT_IGNORE_PATTERNS)
    assert list(uploaded) == [entry["path"] for entry in report["files"]]
    assert not no_network


def test_a_missing_token_is_one_sentence_and_no_hub_call(deploy_space, stand_in_hub, monkeypatch,
                                                        capsys):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert deploy_space.main(["--repo-id", "someone/cmcd"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "token" in error and "hf auth login" in error and error.count(". ") == 0
    assert stand_in_hub == []


def test_a_hub_refusal_is_one_sentence(deploy_space, stand_in_hub, monkeypatch, capsys):
    def refuse(self, repo_id, **kwargs):
        response = SimpleNamespace(headers={}, request=None)  # all the error reads of a response
        raise HfHubHTTPError("403 Forbidden: you cannot create a Space here.\nRequest id: x",
                             response=response)

    monkeypatch.setattr(StandInHfApi, "create_repo", refuse)
    assert deploy_space.main(["--repo-id", "someone/cmcd"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == ("The hub refused the deploy to someone/cmcd: "
                     "403 Forbidden: you cannot create a Space here.")


def test_the_dry_run_shows_the_hardware_and_cpu_basic_may_be_asked_for(deploy_space, stand_in_hub,
                                                                      capsys):
    assert deploy_space.main(["--repo-id", "someone/cmcd", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hardware"] == "zero-a10g"
    assert deploy_space.main(["--repo-id", "someone/cmcd", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "hardware of a new Space: zero-a10g"
    assert stand_in_hub == []  # a dry run asks nothing of the hub
    assert deploy_space.main(["--repo-id", "someone/cmcd", "--hardware", "cpu-basic"]) == 0
    assert stand_in_hub[1][1]["space_hardware"] == "cpu-basic"
    with pytest.raises(SystemExit):
        deploy_space.main(["--repo-id", "someone/cmcd", "--hardware", "a100-large", "--dry-run"])
    assert "invalid choice" in capsys.readouterr().err


def test_zerogpu_refused_to_the_account_says_what_to_do_in_one_sentence(deploy_space, stand_in_hub,
                                                                        monkeypatch, capsys):
    def refuse(self, repo_id, **kwargs):
        response = SimpleNamespace(headers={}, request=None)
        raise HfHubHTTPError("402 Payment Required: ZeroGPU is for PRO users.", response=response)

    monkeypatch.setattr(StandInHfApi, "create_repo", refuse)
    assert deploy_space.main(["--repo-id", "someone/cmcd"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == ("The hub refused to create someone/cmcd on zero-a10g (402 Payment Required: "
                     "ZeroGPU is for PRO users.); ZeroGPU needs a PRO account or a Team or Enterprise "
                     "organisation, so deploy with --hardware cpu-basic otherwise")
    assert [call for call, _ in stand_in_hub] == ["init"]  # nothing uploaded


def test_packages_txt_goes_up_with_every_debian_package_the_code_checks_for():
    """Every Debian package the code names as needed (the speech engines, the recorded digits)
    is installed on the Space through packages.txt, and the dry run uploads that file."""
    from cmcd.modalities.audio import voices
    from cmcd.modalities.audio.renderer import ALLISON_DIGITS

    listed = [line.strip() for line in (ROOT / "packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for package in (*voices.DEBIAN_PACKAGES, "asterisk-core-sounds-en-wav"):
        assert package in listed, package
    assert "asterisk" in str(ALLISON_DIGITS)  # the recorded digits' package, named above
    assert "packages.txt" in [entry["path"] for entry in load_script().space_files()]


@pytest.mark.parametrize("repo_id", ["cmcd", "a/b/c", "someone/my space"])
def test_a_malformed_space_id_exits_2(deploy_space, repo_id, capsys):
    with pytest.raises(SystemExit) as exit:
        deploy_space.main(["--repo-id", repo_id, "--dry-run"])
    assert exit.value.code == 2
    assert "USER/NAME" in capsys.readouterr().err
