"""Deploy the app as a Hugging Face Space: create the Space (Gradio SDK) if it does not exist, then
upload what the app needs and nothing else (no caches, virtual environments, runs or tests).

    python scripts/deploy_space.py --repo-id USER/NAME [--private] [--hardware cpu-basic]
    python scripts/deploy_space.py --repo-id USER/NAME --dry-run --json # what would go up, offline

A new Space is created on ZeroGPU hardware (`zero-a10g`, the default: the Distill tab trains on a
borrowed GPU) or on `cpu-basic`; an existing Space keeps the hardware set in its settings.

The token is huggingface_hub's usual one: $HF_TOKEN, else the one `hf auth login` saved. This is the
only place in the project that talks to the hub; --dry-run makes no network call and imports
nothing that could (huggingface_hub.utils loads its submodules lazily).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

ROOT = Path(__file__).resolve().parent.parent

# Matched as upload_folder matches them: fnmatch on the path relative to the checkout, where "*"
# also crosses "/". An allow-list, so that a new file never goes up by accident.
ALLOW_PATTERNS = (
    "app.py", "README.md", "LICENSE", "requirements.txt", "packages.txt",
    "cmcd/*",  # the package with its shipped data, teachers, default students and examples
    "results/paper.json", "results/theory.json",  # what the Compare and Theory tabs read
    "results/inputs.json",  # the real-input figures of the Try-it and About tabs
    "assets/*.png", "results/figures/*.png",  # the pictures the README shows
)
# A second guard: what builds up inside the allowed folders, or would match a broader allow-list.
IGNORE_PATTERNS = (
    "*__pycache__*", "*.pyc", "*.tmp", "*.egg-info*", ".venv/*", "*/.venv/*", "runs/*",
    "test-artifacts/*", "build/*", ".pytest_cache/*", ".cache/*", "*/.cache/*", "results/cpu/*",
    "tests/*",
)
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
HARDWARE = ("zero-a10g", "cpu-basic")  # huggingface_hub.SpaceHardware values this app runs on
HARDWARE_REFUSAL = re.compile(r"hardware|zero|gpu|\bpro\b|subscri|payment", re.I)


class DeployError(Exception):
    """A deploy that cannot go on, told in one sentence."""


def space_patterns() -> dict[str, list[str]]:
    """upload_folder's allow and ignore patterns, as new lists: it extends its ignore list."""
    return {"allow_patterns": list(ALLOW_PATTERNS), "ignore_patterns": list(IGNORE_PATTERNS)}


def space_files(root: Path = ROOT) -> list[dict]:
    """What upload_folder sends from `root`: its walk, its filter, our patterns and its defaults."""
    root = root.expanduser().resolve()
    on_disk = {path.relative_to(root).as_posix(): path for path in sorted(root.glob("**/*"))
               if path.is_file()}
    patterns = space_patterns()
    patterns["ignore_patterns"] += DEFAULT_IGNORE_PATTERNS
    return [{"path": relpath, "bytes": on_disk[relpath].stat().st_size}
            for relpath in filter_repo_objects(on_disk, **patterns)]


def create_space(api, repo_id: str, private: bool, hardware: str) -> None:
    """Create the Space on `hardware` unless it exists; a refusal of the hardware says what to do."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private,
                        space_hardware=hardware, exist_ok=True)
    except HfHubHTTPError as error:
        reason = str(error).splitlines()[0]
        status = getattr(error.response, "status_code", None)
        if hardware == "cpu-basic" or not (status == 402 or HARDWARE_REFUSAL.search(reason)):
            raise
        raise DeployError(f"The hub refused to create {repo_id} on {hardware} ({reason}); ZeroGPU "
                          "needs a PRO account or a Team or Enterprise organisation, so deploy with "
                          "--hardware cpu-basic otherwise") from error


def deploy(repo_id: str, private: bool, hardware: str = HARDWARE[0], root: Path = ROOT) -> str:
    """Create the Space if needed and make its files exactly the selected ones; returns its address.
    Remote files that are no longer selected are deleted in the same commit."""
    from huggingface_hub import HfApi, get_token  # imported here so that a dry run stays offline
    from huggingface_hub.errors import HfHubHTTPError

    token = get_token()
    if not token:
        raise DeployError("No Hugging Face token found: run `hf auth login` or set HF_TOKEN.")
    api = HfApi(token=token)
    try:
        create_space(api, repo_id, private, hardware)
        api.upload_folder(folder_path=root, repo_id=repo_id, repo_type="space",
                          delete_patterns="*", commit_message="Deploy the CMCD app",
                          **space_patterns())
    except HfHubHTTPError as error:
        reason = str(error).splitlines()[0]
        raise DeployError(f"The hub refused the deploy to {repo_id}: {reason}") from error
    return f"https://huggingface.co/spaces/{repo_id}"


def repo_id_argument(value: str) -> str:
    if not REPO_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Space id of the form USER/NAME")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo-id", required=True, type=repo_id_argument,
                        help="the Space, USER/NAME")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument("--hardware", choices=HARDWARE, default=HARDWARE[0],
                        help="the hardware a new Space asks for (default: %(default)s, ZeroGPU)")
    parser.add_argument("--dry-run", action="store_true", help="list the files only, offline")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser.parse_args(argv)


def summary(report: dict) -> str:
    lines = [f"{entry['bytes']:>12,}  {entry['path']}" for entry in report["files"]]
    lines.append(f"{report['total_bytes']:>12,}  in {len(report['files'])} files")
    lines.append(f"hardware of a new Space: {report['hardware']}")
    if "url" in report:
        lines.append(f"Deployed to {report['url']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = space_files()
    report = {"files": files, "total_bytes": sum(entry["bytes"] for entry in files),
              "hardware": args.hardware}
    if not args.dry_run:
        print(f"Uploading {len(files)} files ({report['total_bytes'] / 1e6:.1f} MB) to the Space "
              f"{args.repo_id}...", file=sys.stderr)
        try:
            report["url"] = deploy(args.repo_id, args.private, args.hardware)
        except DeployError as error:
            print(error, file=sys.stderr)
            return 1
    print(json.dumps(report) if args.json else summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
