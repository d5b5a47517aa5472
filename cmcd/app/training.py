"""The Distill tab: a live run in a worker thread, its curves and metrics, the untrained student
it is compared with, and how long to borrow a Spaces ZeroGPU for it."""

from __future__ import annotations

import queue
import threading
from functools import lru_cache

from cmcd.eval import records
from cmcd.train.config import DistillConfig
from cmcd.train.distill import distill


def distill_events(config, stop):
    """Run `distill(config)` in a worker thread and yield its progress events as they come; the
    finished run is the generator's return value. Setting `stop` (a threading.Event) cancels."""
    events: queue.Queue = queue.Queue()
    outcome: dict = {}

    def work():
        try:
            outcome["run"] = distill(config, progress=events.put, should_stop=stop.is_set)
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
             + f"seed {c.seed}")
    return {"pair": c.pair, "label": label, "seed": c.seed, "metrics": run.metrics,
            "untrained": untrained}


@lru_cache(maxsize=16)
def untrained_metrics(pair: str, seed: int, width: int, device: str = "auto") -> dict:
    """Test metrics of the student a run starts from, before any training (method `random`)."""
    return distill(DistillConfig(pair=pair, method="random", seed=seed, width=width,
                                 device=device)).metrics


def gpu_seconds(epochs: int, n_pairs: int) -> int:
    """How long to ask a Spaces ZeroGPU for one run: start-up and evaluation plus training at a
    pessimistic 10,000 pairs/s."""
    return int(min(300, 45 + epochs * n_pairs / 10_000))


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
