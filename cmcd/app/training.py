"""The Distill tab: a live run in a worker thread, its curves and metrics, the untrained student
it is compared with, and how long to borrow a Spaces ZeroGPU for it."""

from __future__ import annotations

import queue
import threading

import torch

from cmcd.app.once import once_per_key
from cmcd.eval import records
from cmcd.modalities import pairs
from cmcd.models.teacher import load_teacher
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill, train_student
from cmcd.train.teacher_cache import teacher_embeddings


def distill_events(config, stop):
    """Run `distill(config)` (training and evaluation) in a worker thread and yield its progress
    events as they come; the finished run is the generator's return value. Setting `stop` (a
    threading.Event) cancels."""
    return _events_of(distill, config, stop)


def training_events(config, stop):
    """As distill_events, for `train_student(config)` alone: returns a TrainedStudent."""
    return _events_of(train_student, config, stop)


def _events_of(work_on, config, stop):
    events: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run"] = work_on(config, progress=events.put, should_stop=stop.is_set)
        except Exception as error:  # handed to the caller's thread below
            outcome["error"] = error
        finally:
            events.put(None)

    worker = threading.Thread(target=work, daemon=True, name="distill")
    worker.start()
    while (event := events.get()) is not None:
        yield event
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["run"]


def session_summary(run, untrained: dict) -> dict:
    """What a browser session keeps of one of its runs: small, JSON-ready, no tensors."""
    c = run.config
    label = (f"{c.method}, {run.metrics['n_pairs']:,} pairs, {run.metrics['steps']} steps, "
             f"batch {c.batch_size}, "
             + "".join(f"{name} {value}, " for name, value in c.loss.to_dict().items())
             + f"seed {c.seed}, teacher {c.teacher}")
    return {"pair": c.pair, "label": label, "seed": c.seed, "metrics": run.metrics,
            "untrained": untrained}


@once_per_key
def untrained_metrics(pair: str, seed: int, width: int, device: str = "cpu") -> dict:
    """Test metrics of the student a run starts from, before any training (method `random`),
    computed once per (pair, seed, width)."""
    return distill(DistillConfig(pair=pair, method="random", seed=seed, width=width,
                                 device=device)).metrics


@once_per_key
def _prepared_data(pair: str, gap: float | None, teacher: str) -> None:
    data = pairs.load_pair(pair, gap=gap)
    teacher_embeddings(data, teacher, load_teacher(data.spec.dataset, teacher), torch.device("cpu"))


def prepare_data(config: DistillConfig) -> None:
    """Build (or find in the cache) the run's pair data and teacher embeddings on the CPU, before
    a GPU is borrowed for the training alone (once per process for each)."""
    _prepared_data(config.pair, config.gap, config.teacher)


def gpu_seconds(epochs: int, n_pairs: int) -> int:
    """How long to ask a Spaces ZeroGPU for one run's training: start-up (the data is built and
    the run evaluated outside the GPU window) plus training at a pessimistic 10,000 pairs/s."""
    return int(min(300, 30 + epochs * n_pairs / 10_000))


def training_status(config: DistillConfig, event: dict) -> str:
    """The Distill tab's status line during training, with the time left (a ZeroGPU worker may
    not forward gr.Progress, so the time left is in the text too)."""
    if event["kind"] != "step":
        return f"Training {config.pair} with {config.method}… epoch {event['epoch']} validated"
    done = event["step"] / event["total_steps"]
    left = event["elapsed_s"] / done - event["elapsed_s"]
    return (f"Training {config.pair} with {config.method}… step {event['step']}/"
            f"{event['total_steps']}, about {left:.0f} s left")


def training_curves(events: list[dict]):
    """Loss per logged step and validation accuracy per epoch, as one plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation zero-label accuracy"))
    figure.add_trace(go.Scatter(x=[e["step"] for e in steps], y=[e["loss"] for e in steps],
                                mode="lines", name="loss"), row=1, col=1)
    for key in ("head", "prototype"):
        figure.add_trace(go.Scatter(x=[e["epoch"] for e in epochs], y=[e[key] for e in epochs],
                                    mode="lines+markers", name=key), row=1, col=2)
    figure.update_xaxes(title_text="step", row=1, col=1)
    figure.update_xaxes(title_text="epoch", row=1, col=2)
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def metrics_rows(metrics: dict) -> list[list]:
    """One run's metrics as [name, value] rows for a table."""
    return [[metric.label, metric.read(metrics)] for metric in records.ONE_RUN]
