"""Many distillation runs for a benchmark: data built once up front, runs spread over worker
processes, every finished run saved at once, so an interrupted benchmark resumes where it stopped.

A benchmark's file holds {"benchmark", "command", "device", "wall_s", "settings", "runs"}; each run
is a RunRecord: {"study", "config" (a DistillConfig as a dict), "metrics" (what `cmcd distill
--json` prints)}.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch

from cmcd import paths, runtime
from cmcd.data import cache
from cmcd.eval.records import RunRecord
from cmcd.modalities import masks, pairs
from cmcd.models.teacher import load_teacher
from cmcd.train.config import DistillConfig, SegmentConfig
from cmcd.train.dense_teacher import load_dense_teacher, teacher_dense_embeddings
from cmcd.train.distill import distill
from cmcd.train.teacher_cache import teacher_embeddings

log = logging.getLogger(__name__)


@functools.cache
def default_steps(pair: str) -> int:
    """Optimiser steps of a default run on all of a pair's distillation pairs."""
    config = DistillConfig()
    n_pairs = pairs.split_sizes(pair)["pairs"]
    return config.epochs * (n_pairs // config.batch_size)


def run_key(study: str, config) -> str:
    """A run's identity: its study and settings (a config, such as a DistillConfig, or its dict)."""
    fields = config if isinstance(config, dict) else config.to_dict()
    return json.dumps({"study": study, **fields}, sort_keys=True)


def _prepare_one(pair: str, gap: float | None, variants: tuple[str, ...], device: str) -> None:
    data = pairs.load_pair(pair, gap=gap)
    for variant in variants:
        teacher_embeddings(data, variant, load_teacher(data.spec.dataset, variant),
                           runtime.resolve_device(device))


def prepare(planned: list[tuple[str, DistillConfig]], pool: ProcessPoolExecutor | None = None) -> None:
    """Render every (pair, gap) and cache every teacher's embeddings once, before any run starts
    (in parallel on the pool's workers when there is one)."""
    needed: dict[tuple[str, float | None], set[str]] = {}
    for _, config in planned:
        needed.setdefault((config.pair, config.gap), set()).add(config.teacher)
    jobs = [(pair, gap, tuple(sorted(variants)), "auto") for (pair, gap), variants in needed.items()]
    if pool is None:
        for job in jobs:
            _prepare_one(*job)
    else:
        for future in [pool.submit(_prepare_one, *job) for job in jobs]:
            future.result()


def _prepare_segmentation_one(config: dict) -> None:
    config = SegmentConfig.from_dict(config)
    seg = masks.load_segmentation(config.pair, gap=config.gap)
    teacher = load_dense_teacher(seg, config.teacher, config.head_steps)
    if config.n_pairs is None:
        teacher_dense_embeddings(seg, teacher, config.registered, runtime.resolve_device("auto"))


def prepare_segmentation(planned: list[tuple[str, SegmentConfig]],
                         pool: ProcessPoolExecutor | None = None) -> None:
    """For segmentation runs (SegmentConfigs): masks, the dense teacher and its embeddings, once
    per (pair, teacher, head, pairing)."""
    jobs = {}
    for _, config in planned:
        key = (config.pair, config.gap, config.teacher, config.head_steps, config.registered,
               config.n_pairs is None)
        jobs.setdefault(key, config.to_dict())
    if pool is None:
        for job in jobs.values():
            _prepare_segmentation_one(job)
    else:
        for future in [pool.submit(_prepare_segmentation_one, job) for job in jobs.values()]:
            future.result()


class _Relay(logging.Handler):
    """Hands a record that came from a worker to the logger of the same name here."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


@contextmanager
def _worker_logs() -> Iterator[tuple]:
    """(queue, level) for _init_worker: records the workers log at `level` or above come back
    through `queue` and are handled here, as configured here (workers are spawned, so they do
    not inherit this process's logging set-up)."""
    queue = get_context("spawn").Queue()
    listener = logging.handlers.QueueListener(queue, _Relay())
    listener.start()
    try:
        yield queue, logging.getLogger("cmcd").getEffectiveLevel()
    finally:
        listener.stop()


def worker_devices(device: str, workers: int, gpu_count: int) -> list[str]:
    """The device of each worker: with GPUs ('auto' or 'cuda'), worker i uses cuda:(i % GPUs);
    otherwise every worker uses `device`."""
    if device in ("auto", "cuda") and gpu_count > 0:
        return [f"cuda:{worker % gpu_count}" for worker in range(workers)]
    return [device] * workers


def _gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _init_worker(threads: int, log_queue, log_level: int, devices=None) -> None:
    """Set up a worker process; with `devices` (a queue of device names, one per worker), it
    takes its GPU from there, so runs on 'cuda' or 'auto' land on that GPU."""
    torch.set_num_threads(threads)
    logger = logging.getLogger("cmcd")
    logger.addHandler(logging.handlers.QueueHandler(log_queue))
    logger.setLevel(log_level)
    device = devices.get() if devices is not None else "auto"
    if device.startswith("cuda:"):
        torch.cuda.set_device(runtime.resolve_device(device))


def _distill_metrics(study: str, config: dict) -> dict:
    """A benchmark run's job: distil, evaluate on the test split, return the metrics."""
    return distill(DistillConfig.from_dict(config)).metrics


def _score(metrics: dict) -> str:
    """A run's headline number for the progress line: test accuracy, or validation accuracy."""
    if "accuracy" in metrics:
        return f"accuracy {metrics['accuracy']:.3f}"
    return f"validation accuracy {metrics.get('validation', {}).get('accuracy', float('nan')):.3f}"


@dataclass(frozen=True)
class RunKind:
    """What a benchmark's runs are: `run` trains and evaluates one from its study and its config
    as a dict and returns its metrics (a module-level function, so worker processes can take it), `prepare`
    builds the data every planned run needs, `result` words a finished run's headline number."""

    run: Callable[[str, dict], dict]
    prepare: Callable[[list, ProcessPoolExecutor | None], None]
    result: Callable[[dict], str]


DISTILLATION = RunKind(_distill_metrics, prepare, _score)


def _device_queue(device: str, workers: int):
    """A queue holding each worker's device name, for `_init_worker`."""
    devices = get_context("spawn").Queue()
    for name in worker_devices(device, workers, _gpu_count()):
        devices.put(name)
    return devices


def on_device(planned: list[tuple[str, DistillConfig]], device: str) -> list[tuple[str, DistillConfig]]:
    """The plan with every run on `device` ('auto' keeps each run's own)."""
    if device == "auto":
        return planned
    return [(study, dataclasses.replace(config, device=device)) for study, config in planned]


def _earlier_report(path: Path, header: dict, resume: bool) -> dict:
    """What a resumed benchmark already holds in `path`: nothing unless resuming, nor when its runs
    were on another data version."""
    earlier = json.loads(path.read_text()) if resume and path.exists() else {}
    if earlier.get("data_version") != header.get("data_version"):
        if earlier:
            log.warning(f"{path} holds runs on data version {earlier.get('data_version', '1')}: "
                        f"starting again on version {header.get('data_version')}")
        earlier = {}
    return earlier


class _Recorder:
    """Saves the report after every finished run (so a benchmark resumes where it stopped) and logs
    its progress."""

    def __init__(self, path: Path, report: dict, earlier_wall: float, todo: list, kind: RunKind):
        self.path, self.report, self.earlier_wall = path, report, earlier_wall
        self.todo, self.kind = len(todo), kind
        self.done_before = len(report["runs"])
        # The time left is estimated from the optimiser steps left when every run names its steps
        # (a budget study's 4x runs take 16 times its 1/4x ones), else from the runs left.
        self.by_steps = all(getattr(config, "steps", None) for _, config in todo)
        self.work_total = sum(self.work(config) for _, config in todo)
        self.work_done = 0
        self.started = self.runs_started = time.perf_counter()

    def runs_begin(self) -> None:
        """The data is prepared: the time left is estimated from here on (a paused or slow
        preparation must not inflate it)."""
        self.runs_started = time.perf_counter()

    def work(self, config) -> int:
        return config.steps if self.by_steps else 1

    def wall_s(self) -> float:
        return round(self.earlier_wall + time.perf_counter() - self.started, 1)

    def __call__(self, study: str, config: DistillConfig, metrics: dict) -> None:
        self.report["runs"].append(RunRecord(config.to_dict(), metrics, study=study).to_json())
        self.report["wall_s"] = self.wall_s()
        cache.atomic_write_json(self.path, self.report)
        elapsed = time.perf_counter() - self.runs_started
        count = len(self.report["runs"]) - self.done_before
        self.work_done += self.work(config)
        left = elapsed / self.work_done * (self.work_total - self.work_done)
        log.info(f"[{count}/{self.todo}] {study} {config.pair} {config.method} {config.teacher} "
                 f"n={config.n_pairs or 'all'} gap={config.gap} seed={config.seed}: "
                 f"{self.kind.result(metrics)} ({metrics['wall_s']:.1f} s; about "
                 f"{left / 60:.0f} min left)")


def _run_serially(todo: list, kind: RunKind, record: _Recorder) -> list[str]:
    kind.prepare(todo, None)
    record.runs_begin()
    for study, config in todo:
        record(study, config, kind.run(study, config.to_dict()))
    return []


def _run_pooled(todo: list, kind: RunKind, record: _Recorder, workers: int, device: str) -> list[str]:
    """The runs over `workers` processes; a failed run is logged and listed, the others go on."""
    failures: list[str] = []
    threads = max(1, (os.cpu_count() or 1) // workers)
    with _worker_logs() as log_args, ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_init_worker,
            initargs=(threads, *log_args, _device_queue(device, workers))) as pool:
        kind.prepare(todo, pool)
        record.runs_begin()
        futures = {pool.submit(kind.run, study, config.to_dict()): (study, config)
                   for study, config in todo}
        for future in as_completed(futures):
            try:
                record(*futures[future], future.result())
            except Exception as error:  # noqa: BLE001 - one failed run must not lose the others
                failures.append(f"{futures[future][1]}: {error!r}")
                log.error(f"run failed: {failures[-1]}")
    return failures


def execute(planned: list[tuple[str, DistillConfig]], path: Path, header: dict, workers: int = 1,
            resume: bool = False, device: str = "auto", kind: RunKind = DISTILLATION) -> dict:
    """Run every planned (study, config) not yet in `path` (when resuming), saving after each;
    on `device`, with several workers spread over the GPUs (see `worker_devices`). The configs
    are DistillConfigs, or another `kind` of run's configs."""
    path = Path(path)
    planned = on_device(planned, device)
    earlier = _earlier_report(path, header, resume)
    done = earlier.get("runs", [])
    finished = {run_key(run["study"], run["config"]) for run in done}
    todo = [(study, config) for study, config in planned if run_key(study, config) not in finished]
    report = {**header, "device": runtime.describe_device(runtime.resolve_device(device)),
              "workers": workers, "runs": list(done)}
    record = _Recorder(path, report, earlier.get("wall_s", 0.0) if done else 0.0, todo, kind)
    log.info(f"{len(todo)} runs to go ({len(done)} already done); preparing data")
    failures = (_run_serially(todo, kind, record) if workers <= 1
                else _run_pooled(todo, kind, record, workers, device))
    report["wall_s"] = record.wall_s()
    report["runs"].sort(key=lambda run: run_key(run["study"], run["config"]))
    cache.atomic_write_json(path, report)
    if failures:
        raise RuntimeError(f"{len(failures)} runs failed (the others are saved in {path}): "
                           + "; ".join(failures))
    return report


def planned_only(report: dict, planned: list[tuple[str, DistillConfig]]) -> dict:
    """The report with only the runs of `planned` (on whatever device each ran): after the step
    budget changes, a resumed benchmark's file still holds the runs of the old budget, which must
    not join the tables."""
    def key(study: str, config: dict) -> str:
        return run_key(study, {**config, "device": None})
    wanted = {key(study, config.to_dict()) for study, config in planned}
    return {**report, "runs": [run for run in report["runs"] if key(run["study"], run["config"]) in wanted]}


def choose_plan(full, quick_plan, quick: bool, seeds: int | None):
    """A benchmark's plan: the full or the quick one, with `seeds` seeds when given."""
    plan = quick_plan if quick else full
    return dataclasses.replace(plan, seeds=tuple(range(seeds))) if seeds else plan


def load_or_execute(name: str, plan, planned_runs: Callable, out: Path, *, quick: bool,
                    workers: int, resume: bool, report_only: bool, command: str,
                    settings: dict | None = None, device: str = "auto",
                    kind: RunKind = DISTILLATION) -> dict:
    """The benchmark's report: read back from out/NAME.json (report_only) or run (see execute)."""
    path = Path(out) / f"{name}.json"
    if report_only:
        return json.loads(path.read_text())
    header = {"benchmark": name, "command": command, "quick": quick,
              "data_version": paths.DATA_VERSION, "settings": settings or dataclasses.asdict(plan)}
    return execute(planned_runs(plan), path, header, workers=workers, resume=resume, device=device,
                   kind=kind)


def write_json_and_markdown(report: dict, out: str | Path, name: str, markdown: str) -> dict:
    """Write out/NAME.json and out/NAME.md; the report, with the written paths under "written"."""
    written = [Path(out) / f"{name}.json", Path(out) / f"{name}.md"]
    cache.atomic_write_json(written[0], report)
    cache.atomic_write_bytes(written[1], markdown.encode())
    return {**report, "written": [str(path) for path in written]}
