"""Rehearse the Space: run the app as a Hugging Face Space runs it, and call everything it offers.

    python scripts/space_rehearsal.py [--json] [--python PYTHON] [--keep]

1. copies exactly the files `deploy_space.py --dry-run` would upload into an empty folder;
2. checks that the Debian packages of packages.txt are installed (apt-get installs the missing
   ones when run as root);
3. creates a fresh virtual environment there from requirements.txt plus the front matter's Gradio
   (`gradio[mcp]==sdk_version`) and the `spaces` package, as the Space builder does (pip's cache,
   or PIP_FIND_LINKS, keeps it affordable); `--python` uses an existing environment instead;
4. starts `python app.py` with a Space's environment (SPACE_ID, GRADIO_SERVER_NAME=0.0.0.0, port
   7860 or a free one, an empty CMCD cache);
5. calls every named API endpoint with gradio_client and every MCP tool with an MCP client
   (streamable HTTP, files as base64 data URIs), each pair included, run_distillation with tiny
   settings, plus a refused setting each way (its sentence must reach the caller).

Prints one report (each call: ok, seconds, answer) and exits 1 if any call failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy_space  # noqa: E402

ROOT = deploy_space.ROOT
SPACE_ID = "rehearsal/cmcd"
EXAMPLES = Path("cmcd/shipped/examples")
TINY = {"epochs": 1, "n_pairs": 256, "batch_size": 128}  # a run of a few seconds on a CPU
# Each named endpoint's gradio_client calls: (what, positional arguments; a file as examples/NAME).
CLIENT_CALLS = {
    "/classify_sketch": [("digits-sketch", ["digits-sketch", "file:digits-sketch__7__test7017.png"]),
                         ("fashion-sketch", ["fashion-sketch", "file:fashion-sketch__Sneaker__test425.png"])],
    "/classify_depth": [("digits-depth", ["digits-depth", "file:digits-depth__3__test3147.npy"]),
                        ("fashion-depth", ["fashion-depth", "file:fashion-depth__Dress__test1510.png"])],
    "/classify_audio": [("digits-audio", ["digits-audio", "file:digits-audio__7__testvoice7017.wav"])],
    "/distill": [("digits-depth", ["digits-depth", "l2", 1, 256, 128, 0.3, 0])],
    "/alignment": [(pair, [pair, "pca", False, False]) for pair in
                   ("digits-sketch", "digits-depth", "digits-audio", "fashion-sketch", "fashion-depth")],
    "/retrieve": [(pair, [pair, "target→source", 7, 4]) for pair in
                  ("digits-sketch", "digits-depth", "digits-audio", "fashion-sketch", "fashion-depth")],
    # builds a pair's data: the three pairs run_distillation needs anyway (CI time)
    "/contact_sheet": [(pair, [pair]) for pair in ("digits-sketch", "digits-depth", "digits-audio")],
}
# gr.Examples' own endpoints (/load_example, /load_example_1, ...): the first example.
EXAMPLE_LOADER = [("first example", [0])]
# Calls that must be refused, with the sentence the caller must see.
CLIENT_REFUSALS = {"/distill": ["digits-depth", "l2", 1, 256, 128, 0.3, -1]}
MCP_CALLS = {
    "classify_sketch": [{"pair": "digits-sketch", "sketch": "file:digits-sketch__3__test3147.png"},
                        {"pair": "fashion-sketch", "sketch": "file:fashion-sketch__Dress__test2193.png"}],
    "classify_depth_map": [
        {"pair": "digits-depth", "depth_map": "file:digits-depth__7__test7017.npy"},
        {"pair": "fashion-depth", "depth_map": "file:fashion-depth__Sneaker__test425.npy"}],
    "classify_recording": [{"pair": "digits-audio", "recording": "file:digits-audio__3__testvoice3147.wav"}],
    "run_distillation": [{"pair": pair, "method": "cmc", **TINY}
                         for pair in ("digits-sketch", "digits-depth", "digits-audio")],
}
MCP_REFUSALS = {"run_distillation": {"pair": "digits-sketch", "method": "cmc", **TINY, "seed": -1}}
REFUSED_SENTENCE = "seed (-1) must be at least 0"
MIME = {".png": "image/png", ".npy": "application/octet-stream", ".wav": "audio/wav"}


def log(message: str) -> None:
    print(f"[rehearsal] {message}", file=sys.stderr, flush=True)


def copy_space_files(target: Path, root: Path = ROOT) -> list[str]:
    """The dry run's files, copied into the empty folder `target`; returns their paths."""
    paths = [entry["path"] for entry in deploy_space.space_files(root)]
    for relpath in paths:
        (target / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relpath, target / relpath)
    return paths


def debian_packages(space: Path) -> list[str]:
    lines = (space / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def missing_packages(packages: list[str]) -> list[str]:
    """The packages dpkg does not report as installed."""
    missing = []
    for package in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True).stdout
        if status != "install ok installed":
            missing.append(package)
    return missing


def ensure_packages(space: Path) -> dict:
    """packages.txt installed, as the Space builder installs it: apt-get when root, else a check."""
    packages = debian_packages(space)
    missing = missing_packages(packages) if shutil.which("dpkg-query") else packages
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        log(f"apt-get install {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        missing = missing_packages(packages)
    return {"packages": packages, "missing": missing}


def space_requirements(space: Path) -> list[str]:
    """What the Space builder installs: requirements.txt, the front matter's Gradio, spaces."""
    front_matter = (space / "README.md").read_text().split("---\n", 2)[1]
    sdk_version = re.search(r"^sdk_version: *(\S+)", front_matter, re.M).group(1)
    return ["-r", str(space / "requirements.txt"), f"gradio[mcp]=={sdk_version}", "spaces"]


def space_python(space: Path) -> str:
    """The front matter's python_version when this machine has it, else this Python."""
    wanted = re.search(r'^python_version: *"?([\d.]+)', (space / "README.md").read_text(), re.M)
    if wanted:
        version = wanted.group(1)
        candidates = [shutil.which(f"python{version}"),
                      *map(str, sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/python{version}")))]
        for candidate in filter(None, candidates):
            if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
                return candidate
    return sys.executable


def make_environment(space: Path) -> tuple[Path, float]:
    """A fresh virtual environment with the Space's requirements; returns its python, seconds."""
    started = time.perf_counter()
    folder = space.parent / "venv"
    base = space_python(space)
    log(f"creating a virtual environment with {base}")
    subprocess.run([base, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    log(f"pip install {' '.join(space_requirements(space))} (torch is large)")
    # --no-compile: byte-compiling torch's files at install time doubles the install (221 s against
    # 110 s); Python compiles what it imports anyway.
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                    *space_requirements(space)], check=True)
    return python, time.perf_counter() - started


def free_port(preferred: int = 7860) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError("no free port")


def space_environment(space: Path, port: int) -> dict:
    """A Space's environment: its id and server settings, an empty cache, nothing of ours."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("CMCD_", "PYTHON", "GRADIO_", "VIRTUAL_ENV"))}
    return {**env, "SPACE_ID": SPACE_ID, "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0",
            "GRADIO_SERVER_PORT": str(port), "CMCD_CACHE": str(space.parent / "empty-cache")}


def start_app(python: Path, space: Path, port: int, log_file) -> tuple[subprocess.Popen, str, float]:
    """`python app.py` in the Space folder; returns it, its URL and the seconds to its page."""
    started = time.perf_counter()
    process = subprocess.Popen([str(python), "app.py"], cwd=space, env=space_environment(space, port),
                               stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - started < 600:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return process, url, time.perf_counter() - started
        except OSError:
            time.sleep(1)
    process.kill()
    raise RuntimeError("app.py did not serve its page within 600 s")


def named_endpoints(url: str) -> list[str]:
    """Every endpoint an API client may call by name (public or undocumented), from the config."""
    config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
    return sorted(f"/{dep['api_name']}" for dep in config["dependencies"]
                  if dep.get("api_name") and dep.get("api_visibility", "public") != "private")


def timed(record: dict, call) -> dict:
    """Run `call()`; the record gets ok, seconds and the answer (or the error)."""
    started = time.perf_counter()
    try:
        answer = call()
        record.update(ok=True, answer=summarise(answer))
    except Exception as error:  # a failed call is reported, not raised
        record.update(ok=False, error=f"{type(error).__name__}: {error}"[:500])
    record["seconds"] = round(time.perf_counter() - started, 2)
    log(f"{'ok  ' if record['ok'] else 'FAIL'} {record['seconds']:7.2f} s  {record['client']} "
        f"{record['call']} {record.get('pair', '')}")
    return record


def summarise(answer):
    """An answer as the report keeps it: JSON text parsed, big payloads cut to their start."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError:
            pass
    text = json.dumps(answer, default=str)
    return answer if len(text) <= 600 else text[:600] + "…"


def refused(call, sentence: str):
    """`call()` must fail with `sentence` in its message; returns that message."""
    try:
        call()
    except Exception as error:
        if sentence in str(error):
            return f"refused: {error}"
        raise AssertionError(f"refused without the sentence {sentence!r}: {error}") from error
    raise AssertionError("a refused setting was accepted")


def client_calls(url: str, space: Path) -> list[dict]:
    """Every named endpoint through gradio_client, and the refused setting."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)

    def argument(value):
        if isinstance(value, str) and value.startswith("file:"):
            return handle_file(space / EXAMPLES / value[5:])
        return value

    records = []
    for endpoint in named_endpoints(url):
        plan = CLIENT_CALLS.get(endpoint, EXAMPLE_LOADER if endpoint.startswith("/load_example") else None)
        if plan is None:
            records.append({"client": "gradio_client", "call": endpoint, "ok": False, "seconds": 0,
                            "error": "the rehearsal has no call for this endpoint: add one"})
            continue
        for pair, arguments in plan:
            values = [argument(value) for value in arguments]
            records.append(timed({"client": "gradio_client", "call": endpoint, "pair": pair},
                                 lambda v=values, e=endpoint: client.predict(*v, api_name=e)))
    for endpoint, arguments in CLIENT_REFUSALS.items():
        records.append(timed({"client": "gradio_client", "call": endpoint, "pair": "refused seed"},
                             lambda a=arguments, e=endpoint: refused(
                                 lambda: client.predict(*a, api_name=e), REFUSED_SENTENCE)))
    return records


def data_uri(path: Path) -> str:
    return f"data:{MIME[path.suffix]};base64," + base64.b64encode(path.read_bytes()).decode()


def mcp_calls(url: str, space: Path, space_id: str) -> list[dict]:
    """Every MCP tool over streamable HTTP, files as base64 data URIs, and the refused setting."""
    import anyio
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    def arguments_of(plan: dict) -> dict:
        return {name: data_uri(space / EXAMPLES / value[5:])
                if isinstance(value, str) and value.startswith("file:") else value
                for name, value in plan.items()}

    async def answer(name: str, arguments: dict) -> tuple[bool, str]:
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool(name, arguments)
            return result.isError, " ".join(item.text for item in result.content if item.type == "text")

    def call(name: str, arguments: dict) -> str:
        failed, text = anyio.run(answer, name, arguments)  # raised here, not inside the task group
        if failed:
            raise RuntimeError(text)
        return text

    async def listed() -> list[str]:
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), \
                ClientSession(read, write) as session:
            await session.initialize()
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    records, prefix = [], tool_prefix(space_id)
    for tool in anyio.run(listed):
        name = tool.removeprefix(prefix)
        for plan in MCP_CALLS.get(name, [None]):
            record = {"client": "mcp", "call": tool, "pair": (plan or {}).get("pair", "")}
            if plan is None:
                records.append({**record, "ok": False, "seconds": 0,
                                "error": "the rehearsal has no call for this tool: add one"})
                continue
            records.append(timed(record, lambda t=tool, p=plan: call(t, arguments_of(p))))
    for name, plan in MCP_REFUSALS.items():
        records.append(timed({"client": "mcp", "call": prefix + name, "pair": "refused seed"},
                             lambda t=prefix + name, p=plan: refused(lambda: call(t, p), REFUSED_SENTENCE)))
    return records


def tool_prefix(space_id: str) -> str:
    """On a Space, Gradio names each MCP tool after the Space first: `NAME_classify_sketch`."""
    return space_id.split("/")[-1] + "_"


def server_problems(log_path: Path) -> list[str]:
    """Lines of the app's log that say something went wrong (tracebacks, warnings)."""
    lines = log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if re.search(r"Traceback|Error|Warning|warn", line)][:40]


def rehearse(workdir: Path, python: Path | None) -> dict:
    space = workdir / "space"
    space.mkdir()
    report = {"files": len(copy_space_files(space)), "debian": ensure_packages(space)}
    if report["debian"]["missing"]:
        report["error"] = f"Debian packages missing: {' '.join(report['debian']['missing'])}"
        return report
    if python is None:
        python, report["environment_s"] = make_environment(space)
    report["python"] = subprocess.run([str(python), "-c", "import sys, gradio; print(sys.version.split()[0], "
                                       "gradio.__version__)"], capture_output=True, text=True).stdout.split()
    port = free_port()
    log_path = workdir / "app.log"
    with open(log_path, "w") as log_file:
        process, url, report["start_s"] = start_app(python, space, port, log_file)
        report["port"] = port
        try:
            report["calls"] = client_calls(url, space) + mcp_calls(url, space, SPACE_ID)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report["server_log"] = server_problems(log_path)
    return report


def summary(report: dict) -> str:
    lines = [f"{len(report.get('calls', []))} calls, Python and Gradio {report.get('python')}, "
             f"app up in {report.get('start_s', 0):.1f} s"]
    for call in report.get("calls", []):
        lines.append(f"{'ok  ' if call['ok'] else 'FAIL'} {call['seconds']:7.2f} s  {call['client']:13} "
                     f"{call['call']:20} {call.get('pair', '')}"
                     + ("" if call["ok"] else f"\n      {call['error']}"))
    if report.get("error"):
        lines.append(report["error"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--python", type=Path,
                        help="use this environment's python instead of creating a fresh one")
    parser.add_argument("--keep", action="store_true", help="keep the rehearsal's folder")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="cmcd-space-rehearsal-"))
    try:
        report = rehearse(workdir, args.python)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        report = {"error": str(error)}
        log_path = workdir / "app.log"
        if log_path.exists():
            report["server_log"] = log_path.read_text(errors="replace").splitlines()[-30:]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["ok"] = "error" not in report and all(call["ok"] for call in report.get("calls", []))
    print(json.dumps(report) if args.json else summary(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
