"""Step 3 with zero target labels: a distilled student classifies target inputs through the
teacher's head (`cmcd classify`, the app's Try-it panel)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from cmcd.data import pairs
from cmcd.data.inputs import InputError
from cmcd.data.sources import CLASS_NAMES
from cmcd.eval.metrics import zero_label_accuracy
from cmcd.models.checkpoints import load_student
from cmcd.models.embed import embed
from cmcd.models.teacher import load_teacher
from cmcd.paths import checkpoint_root


def student_stem(pair: str, run_dir: Path | None = None) -> Path:
    """The student of a run folder, or the one shipped for the pair."""
    return Path(run_dir) / "student" if run_dir else checkpoint_root() / f"student-{pair}"


def has_shipped_student(pair: str) -> bool:
    """Whether a student ships for the pair (at checkpoint_root())."""
    stem = student_stem(pair)
    return stem.with_suffix(".safetensors").exists() and stem.with_suffix(".json").exists()


class Classifier:
    """A student plus its teacher's head, loaded once, classifying many inputs."""

    def __init__(self, pair: str, run_dir: Path | None = None):
        self.spec = pairs.get_spec(pair)
        self.student, self.metadata = load_student(student_stem(pair, run_dir))
        if self.metadata.get("pair") != pair:
            raise ValueError(f"the student at {student_stem(pair, run_dir)} was trained for "
                             f"{self.metadata.get('pair')!r}, not {pair!r}")
        self.teacher = load_teacher(self.spec.dataset, self.metadata.get("teacher", "ft"))
        self.class_names = CLASS_NAMES[self.spec.dataset]

    @torch.no_grad()
    def predict(self, sample: torch.Tensor) -> dict:
        """One target sample (1, H, W) -> {"label", "probs"}."""
        embedding = embed(self.student, sample[None], normalize=True)
        probs = F.softmax(self.teacher.classify(embedding), dim=1)[0]
        return {"label": self.class_names[int(probs.argmax())],
                "probs": {name: round(float(p), 4) for name, p in zip(self.class_names, probs, strict=True)}}

    def predict_file(self, path: Path) -> dict:
        return self.predict(self.spec.target.read_file(path))


def classify_files(pair: str, files: list[Path], run_dir: Path | None = None) -> list[dict]:
    """One entry per file, in order: {"file", "label", "probs"} or {"file", "error"}."""
    classifier = Classifier(pair, run_dir)
    results = []
    for path in files:
        try:
            results.append({"file": str(path), **classifier.predict_file(path)})
        except InputError as error:
            results.append({"file": str(path), "error": str(error)})
        except Exception as error:  # whatever goes wrong with one file, the others get results
            results.append({"file": str(path), "error": f"{Path(path).name}: could not be read "
                                                         f"({type(error).__name__})"})
    return results


def real_samples_accuracy(student: torch.nn.Module, head: torch.nn.Linear, modality) -> dict | None:
    """Zero-label head accuracy on the modality's real-world samples (such as real people's
    recordings of the digits), when it has them and they are installed."""
    recordings = modality.real_samples() if modality.real_samples else None
    if recordings is None:
        return None
    features, labels = recordings
    return {**zero_label_accuracy(embed(student, features), labels, head), "n": len(labels)}
