import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest


def _load_script(name: str):
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ci_requirements = _load_script("ci_requirements")


@pytest.fixture(scope="session")
def require():
    """require(name): return if the system requirement `name` (scripts/ci_requirements.py) is
    installed, else skip the test; under CI=true fail it instead."""
    return ci_requirements.require


@pytest.fixture
def readme_results(tmp_path, monkeypatch):
    """scripts/readme_results.py reading its results files from tmp_path."""
    script = _load_script("readme_results")
    monkeypatch.setattr(script, "RESULTS", tmp_path)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    return script


@pytest.fixture
def skip_under_ci():
    """skip_under_ci(reason): skip the test, or under CI=true fail it."""
    return ci_requirements.skip_under_ci


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test fails the run, except the CUDA tests (marked `cuda`)."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    verdict = ci_requirements.skip_verdict(reason, item.get_closest_marker("cuda") is not None,
                                           ci_requirements.under_ci())
    if verdict:
        report.outcome, report.longrepr = "failed", verdict


def _in_a_fresh_folder(tmp_path_factory, variable: str, name: str):
    folder = tmp_path_factory.mktemp(name)
    previous = os.environ.get(variable)
    os.environ[variable] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = previous


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session builds its data into a fresh cache folder of its own."""
    yield from _in_a_fresh_folder(tmp_path_factory, "CMCD_CACHE", "cmcd-cache")


@pytest.fixture(scope="session", autouse=True)
def isolated_students(tmp_path_factory):
    """The students the tests' runs save (the app's run store included) go to a folder of the
    session's own, never into the checkout's checkpoints/."""
    yield from _in_a_fresh_folder(tmp_path_factory, "CMCD_STUDENTS", "cmcd-students")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network connection attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def made_up_theory_report():
    """A `cmcd bench theory` report made up from points, not runs: two pairs, four arms, three
    seeds, the target error rising with TV inside each pair; a calibration within 0.05."""
    from cmcd.bench.theory_summary import summary

    points = []
    for pair, offset in (("digits-sketch", 0.0), ("fashion-depth", 0.3)):
        for i, arm in enumerate(("cmc", "cmd", "l2", "cmc, gap 1")):
            for seed in range(3):
                tv = 0.5 + 0.1 * i + 0.02 * seed
                points.append({"pair": pair, "arm": arm, "method": arm[:3], "fixed_gap": arm != "cmc, gap 1",
                               "gap_sweep": arm in ("cmc", "cmc, gap 1"),
                               "gap": 1.0 if arm == "cmc, gap 1" else 0.3, "steps": 100, "n_pairs": 8000,
                               "seed": seed, "n_test": 1000, "error": round(offset + tv / 2, 4),
                               "source_error": offset, "tv": tv, "tv_low": tv - 0.02, "tv_high": tv + 0.02,
                               "tv_wide": 1.0, "tv_wide_low": 0.99, "tv_wide_high": 1.0, "tv_head": tv / 2})
    calibration = [{"estimator": name, "family": "mixture", "true_tv": level, "estimated_tv": level - 0.05,
                    "ci_low": level - 0.08, "ci_high": level - 0.02}
                   for name in ("tv", "tv_wide") for level in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return {"benchmark": "theory", "command": "cmcd bench theory", "device": "CPU", "wall_s": 60.0,
            "settings": {"teacher": "ssl"}, "runs": [{}] * len(points), "points": points,
            "calibration": calibration, "summary": summary(points, calibration)}
