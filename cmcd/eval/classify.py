"""Step 3 with zero target labels: a distilled student classifies target inputs through the
teacher's head (`cmcd classify`, the app's Try-it panel)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from cmcd.data import pairs
from cmcd.paths import checkpoint_root
from cmcd.models.checkpoints import load_checkpoint
from cmcd.modalities import encoder_from_config
from cmcd.data.inputs import InputError
from cmcd.data.sources import CLASS_NAMES
from cmcd.models.teacher import load_teacher


def student_stem(pair: str, run_dir: Path | None = None) -> Path:
    """The student of a run folder, or the one shipped for the pair."""
    return Path(run_dir) / "student" if run_dir else checkpoint_root() / f"student-{pair}"


class Classifier:
    """A student plus its teacher's head, loaded once, classifying many inputs."""

    def __init__(self, pair: str, run_dir: Path | None = None):
        self.spec = pairs.get_spec(pair)
        states, metadata = load_checkpoint(student_stem(pair, run_dir))
        if metadata.get("pair") != pair:
            raise ValueError(f"the student at {student_stem(pair, run_dir)} was trained for "
                             f"{metadata.get('pair')!r}, not {pair!r}")
        self.student = encoder_from_config(metadata["modules"]["encoder"])
        self.student.load_state_dict(states["encoder"])
        self.student.eval()
        self.metadata = metadata
        self.teacher = load_teacher(self.spec.dataset, metadata.get("teacher", "ft"))
        self.class_names = CLASS_NAMES[self.spec.dataset]

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised student embeddings of target inputs (N, 1, H, W)."""
        return F.normalize(self.student(inputs), dim=1)

    @torch.no_grad()
    def predict(self, sample: torch.Tensor) -> dict:
        """One target sample (1, H, W) -> {"label", "probs"}."""
        probs = F.softmax(self.teacher.classify(self.embed(sample[None])), dim=1)[0]
        return {"label": self.class_names[int(probs.argmax())],
                "probs": {name: round(float(p), 4) for name, p in zip(self.class_names, probs)}}

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
    return results
