"""Step 3 with zero target labels: a distilled student classifies target inputs through the
teacher's head (`cmcd classify`, the app's Try-it panel)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from cmcd.data.inputs import results_per_file
from cmcd.data.sources import CLASS_NAMES
from cmcd.eval.confidence import Calibration, student_outputs
from cmcd.eval.metrics import zero_label_accuracy
from cmcd.modalities import pairs
from cmcd.models.checkpoints import load_student
from cmcd.models.embed import embed
from cmcd.models.teacher import load_teacher
from cmcd.paths import checkpoint_root


def student_stem(pair: str, run_dir: Path | None = None) -> Path:
    """The student of a run folder, or the one shipped for the pair."""
    return Path(run_dir) / "student" if run_dir else checkpoint_root() / f"student-{pair}"


def weights_digest(pair: str, run_dir: Path | None = None) -> str:
    """A checksum of a student's weights: which student a stored figure or embedding is of."""
    weights = student_stem(pair, run_dir).with_suffix(".safetensors")
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


def has_shipped_student(pair: str) -> bool:
    """Whether a student ships for the pair (at checkpoint_root())."""
    stem = student_stem(pair)
    return stem.with_suffix(".safetensors").exists() and stem.with_suffix(".json").exists()


def describe(result: dict) -> str:
    """One line for a person: "6 (93 %)", or "Not sure — closest: 6 (41 %)"."""
    answer = f"{result['closest']} ({round(100 * result['confidence'])} %)"
    return f"Not sure — closest: {answer}" if result["unsure"] else answer


class Classifier:
    """A student plus its teacher's head and its calibration, loaded once, classifying many
    inputs."""

    def __init__(self, pair: str, run_dir: Path | None = None):
        self.spec = pairs.get_spec(pair)
        self.student, self.metadata = load_student(student_stem(pair, run_dir))
        if self.metadata.get("pair") != pair:
            raise ValueError(f"the student at {student_stem(pair, run_dir)} was trained for "
                             f"{self.metadata.get('pair')!r}, not {pair!r}")
        self.teacher = load_teacher(self.spec.dataset, self.metadata.get("teacher", "ft"))
        self.class_names = CLASS_NAMES[self.spec.dataset]
        self.calibration = Calibration.from_json(self.metadata.get("calibration"))

    def predict_many(self, samples: torch.Tensor) -> list[dict]:
        """Target samples (N, C, H, W) -> one {"label", "confidence", "unsure", "closest",
        "probs"} each: the most probable class (also "closest", the class to name when "not
        sure"), its calibrated probability, and whether the input looks like none of the classes."""
        outputs = student_outputs(self.student, self.teacher, samples)
        probabilities = self.calibration.probabilities(outputs.logits)
        unsure = self.calibration.unsure(outputs)
        results = []
        for probs, doubt in zip(probabilities, unsure.tolist(), strict=True):
            best = self.class_names[int(probs.argmax())]
            results.append({"label": best, "confidence": round(float(probs.max()), 4),
                            "unsure": bool(doubt), "closest": best,
                            "probs": {name: round(float(p), 4)
                                      for name, p in zip(self.class_names, probs, strict=True)}})
        return results

    def predict(self, sample: torch.Tensor) -> dict:
        """One target sample (C, H, W) -> {"label", "confidence", "unsure", "closest", "probs"}."""
        return self.predict_many(sample[None])[0]

    def predict_file(self, path: Path) -> dict:
        return self.predict(self.spec.target.read_file(path))


def classify_files(pair: str, files: list[Path], run_dir: Path | None = None) -> list[dict]:
    """One entry per file, in order: {"file", "label", "confidence", "unsure", "closest",
    "probs"} (see Classifier.predict_many) or {"file", "error"}."""
    classifier = Classifier(pair, run_dir)
    return results_per_file(files, classifier.predict_file)


def real_samples_accuracy(student: torch.nn.Module, head: torch.nn.Linear, modality) -> dict | None:
    """Zero-label head accuracy on the modality's real-world samples (such as real people's
    recordings of the digits), when it has them and they are installed."""
    recordings = modality.real_samples() if modality.real_samples else None
    if recordings is None:
        return None
    features, labels = recordings
    return {**zero_label_accuracy(embed(student, features), labels, head), "n": len(labels)}
