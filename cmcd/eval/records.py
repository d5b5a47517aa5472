"""What a run measured, by name: the catalogue of metrics every table reads, and the typed record
of one run (its config, metrics and training history) that run folders and benchmarks keep.

A run's metrics are the nested dict `cmcd distill --json` prints; a `Metric` reads one number of
it, so no table spells a metric's place in that dict or its heading a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    name: str  # its place in the metrics dict, dotted: "retrieval.target_to_source.r1"
    heading: str  # a table column's heading
    label: str  # a row's label in the table of one run
    higher_is_better: bool = True

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("."))

    def read(self, metrics: dict) -> float:
        value = metrics
        for key in self.path:
            value = value[key]
        return float(value)


ACCURACY = Metric("accuracy", "accuracy", "test accuracy of the run's classifier (the teacher's head on "
                  "the student; the supervised reference: its own head)")
ZERO_LABEL_HEAD = Metric("zero_label_acc.head", "zero-label head", "zero-label accuracy, teacher head")
ZERO_LABEL_PROTOTYPE = Metric("zero_label_acc.prototype", "zero-label prototype",
                              "zero-label accuracy, nearest prototype")
FEW_LABEL_1 = Metric("few_label_acc.1", "1 label/class", "few-label accuracy, 1 per class")
FEW_LABEL_5 = Metric("few_label_acc.5", "5 labels/class", "few-label accuracy, 5 per class")
FEW_LABEL_10 = Metric("few_label_acc.10", "10 labels/class", "few-label accuracy, 10 per class")
FEW_LABEL_FT_1 = Metric("few_label_ft_acc.1", "1 label/class, fine-tuned",
                        "few-label accuracy, whole student fine-tuned, 1 per class")
FEW_LABEL_FT_5 = Metric("few_label_ft_acc.5", "5 labels/class, fine-tuned",
                        "few-label accuracy, whole student fine-tuned, 5 per class")
FEW_LABEL_FT_10 = Metric("few_label_ft_acc.10", "10 labels/class, fine-tuned",
                         "few-label accuracy, whole student fine-tuned, 10 per class")
R1_TARGET_TO_SOURCE = Metric("retrieval.target_to_source.r1", "R@1 target→source", "R@1 target→source")
R1_SOURCE_TO_TARGET = Metric("retrieval.source_to_target.r1", "R@1 source→target", "R@1 source→target")
TV_EMBEDDINGS = Metric("tv_distance", "TV (embeddings)", "TV distance, embeddings on 2 principal directions",
                       higher_is_better=False)
TV_HEAD = Metric("tv_distance_head", "TV (head)", "TV distance, as the teacher's head sees them",
                 higher_is_better=False)
PAIRS_PER_S = Metric("pairs_per_s", "pairs/s", "training pairs/s")
WALL_S = Metric("wall_s", "wall time (s)", "wall time, s", higher_is_better=False)

# Named column sets, one per table that shows them.
EVALUATED = (ZERO_LABEL_HEAD, ZERO_LABEL_PROTOTYPE, FEW_LABEL_1, FEW_LABEL_5, FEW_LABEL_10,
             R1_TARGET_TO_SOURCE, R1_SOURCE_TO_TARGET, TV_EMBEDDINGS, TV_HEAD)  # what `evaluate` gives
PAPER_TABLE = (ACCURACY, ZERO_LABEL_PROTOTYPE, FEW_LABEL_1, FEW_LABEL_5, FEW_LABEL_10, FEW_LABEL_FT_1,
               FEW_LABEL_FT_5, FEW_LABEL_FT_10, R1_TARGET_TO_SOURCE)  # a benchmark run's
COMPARE = (ZERO_LABEL_HEAD, ZERO_LABEL_PROTOTYPE, FEW_LABEL_1, FEW_LABEL_10, R1_TARGET_TO_SOURCE,
           R1_SOURCE_TO_TARGET, TV_EMBEDDINGS, TV_HEAD)  # the app's Compare tab
# Metrics that read the student in the teacher's space: meaningless for a student trained with a
# head of its own (the supervised reference), so shown as "n/a" for it in the tables and the app.
TEACHER_SPACE = (ZERO_LABEL_PROTOTYPE, R1_TARGET_TO_SOURCE, R1_SOURCE_TO_TARGET, TV_EMBEDDINGS, TV_HEAD)
ONE_RUN = (*EVALUATED, PAIRS_PER_S, WALL_S)  # the app's table of a run just trained
SUMMARY = (ZERO_LABEL_HEAD, ZERO_LABEL_PROTOTYPE, R1_TARGET_TO_SOURCE, TV_EMBEDDINGS, WALL_S)


def summary_line(metrics: dict) -> str:
    """One run in one line: what ran, then the SUMMARY metrics."""
    m = metrics
    return (f"{m['pair']} {m['method']} (teacher {m['teacher']}, seed {m['seed']}, {m['device']}): "
            + ", ".join(f"{metric.heading} {metric.read(metrics):g}" for metric in SUMMARY))


@dataclass
class RunRecord:
    """One distillation run, JSON-ready: its config (a DistillConfig as a dict), its metrics (what
    `cmcd distill --json` prints), its training history, and the benchmark study it belongs to."""

    config: dict
    metrics: dict
    history: list[dict] = field(default_factory=list)  # per logged step
    val_history: list[dict] = field(default_factory=list)  # per validation
    study: str | None = None

    def to_json(self) -> dict:
        """Empty parts are left out: a benchmark's run is {"study", "config", "metrics"}."""
        parts = {"study": self.study, "config": self.config, "metrics": self.metrics,
                 "history": self.history, "val_history": self.val_history}
        return {key: value for key, value in parts.items() if value is not None and value != []}

    @classmethod
    def from_json(cls, data: dict) -> RunRecord:
        return cls(config=data["config"], metrics=data["metrics"], history=data.get("history", []),
                   val_history=data.get("val_history", []), study=data.get("study"))
