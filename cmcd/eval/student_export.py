"""A student taken elsewhere: an ONNX export (the student and its teacher's head in one graph) and
a zip bundle of everything needed to use it (`cmcd export`, the app's Download button).

The ONNX graph takes the target modality's raw tensors "target" (N, C, H, W), exactly what the
run's data and `Modality.read_file` give, and returns "embedding" (N, d: the student's output,
not normalised) and "logits" (N, classes: the teacher's head on the normalised embedding, before
the calibration temperature in student.json).
"""

from __future__ import annotations

import io
import threading
import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cmcd.data import cache
from cmcd.eval.classify import student_stem
from cmcd.modalities import pairs
from cmcd.models.checkpoints import load_student
from cmcd.models.teacher import load_teacher

ONNX_OPSET = 17
INPUT, OUTPUTS = "target", ("embedding", "logits")
# torch's exporter keeps its state in globals: two exports at once (two of the app's visitors)
# fail ("GLOBALS.in_onnx_export must be False"), so one at a time.
_EXPORTING = threading.Lock()


class StudentWithHead(nn.Module):
    """The student followed by its teacher's head: what the ONNX file computes."""

    def __init__(self, student: nn.Module, teacher):
        super().__init__()
        self.student, self.teacher = student.eval(), teacher

    def forward(self, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.student(target).float()
        return embedding, self.teacher.classify(F.normalize(embedding, dim=1))


def onnx_bytes(student: nn.Module, teacher, example: torch.Tensor) -> bytes:
    """The student (and its teacher's head) as an ONNX model, one self-contained file, with a
    dynamic batch size; `example` is a batch of the modality's raw inputs. The TorchScript-based
    exporter writes the weights into the file itself and needs no onnxscript."""
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in (INPUT, *OUTPUTS)}
    with _EXPORTING, warnings.catch_warnings():  # torch calls that exporter deprecated; it is
        warnings.simplefilter("ignore")  # still the one that writes a single file
        torch.onnx.export(StudentWithHead(student, teacher).cpu(), (example[:1].cpu(),), buffer,
                          input_names=[INPUT], output_names=list(OUTPUTS), dynamic_axes=axes,
                          opset_version=ONNX_OPSET, dynamo=False)
    return buffer.getvalue()


def example_inputs(pair: str, count: int = 1) -> torch.Tensor:
    """`count` test inputs of the pair's target modality (the shape and type the student reads)."""
    return pairs.load_pair(pair).test.target[:count]


def load_run_student(run_dir: Path) -> tuple[nn.Module, dict, object]:
    """A run folder's student, its metadata and its teacher."""
    student, metadata = load_student(Path(run_dir) / "student")
    teacher = load_teacher(pairs.get_spec(metadata["pair"]).dataset, metadata.get("teacher", "ft"))
    return student, metadata, teacher


def write_onnx(run_dir: Path, out: Path) -> Path:
    """The run's student as an ONNX file at `out` (written atomically)."""
    student, metadata, teacher = load_run_student(run_dir)
    cache.atomic_write_bytes(Path(out), onnx_bytes(student, teacher, example_inputs(metadata["pair"])))
    return Path(out)


README = """A CMCD student: {pair} ({method}, teacher {teacher}), zero-label test accuracy {accuracy}.

Files
- student.safetensors, student.json: the student's weights and its metadata (encoder config,
  pair, method, teacher, test metrics, and the calibration of its confidence and "not sure").
- config.json: every setting of the run that trained it.
- student.onnx: the student and its teacher's head in one ONNX graph. Input "target": float
  tensors (N, C, H, W) of the {target} modality as CMCD prepares them (Modality.read_file);
  outputs "embedding" (N, {dim}) and "logits" (N, classes).

Load it with PyTorch (pip install cmcd from the project), or classify files with it:
    from cmcd.models.checkpoints import load_student
    student, metadata = load_student("FOLDER/student")   # FOLDER: where this zip was unpacked
    cmcd classify --pair {pair} --run FOLDER FILE...

Load it with ONNX Runtime (pip install onnxruntime):
    import onnxruntime, numpy as np
    session = onnxruntime.InferenceSession("student.onnx")
    embedding, logits = session.run(None, {{"target": inputs.astype(np.float32)}})
    # calibrated probabilities: softmax(logits / calibration["temperature"]) from student.json
"""


def readme_text(metadata: dict, student: nn.Module) -> str:
    accuracy = metadata.get("metrics", {}).get("zero_label_acc", {}).get("head")
    return README.format(pair=metadata["pair"], method=metadata.get("method"),
                         teacher=metadata.get("teacher", "ft"),
                         accuracy="n/a" if accuracy is None else f"{accuracy:.1%}",
                         target=pairs.get_spec(metadata["pair"]).target.name,
                         dim=student.config.get("embed_dim", "d"))


def write_bundle(run_dir: Path, out: Path, example: torch.Tensor | None = None) -> Path:
    """A zip at `out` (written atomically): student.safetensors, student.json, config.json,
    student.onnx and README.txt. `example`: an input of the pair (default: its first test item)."""
    run_dir = Path(run_dir)
    student, metadata, teacher = load_run_student(run_dir)
    stem = student_stem(metadata["pair"], run_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in (stem.with_suffix(".safetensors"), stem.with_suffix(".json"),
                     run_dir / "config.json"):
            if path.exists():
                bundle.write(path, path.name)
        example = example_inputs(metadata["pair"]) if example is None else example
        bundle.writestr("student.onnx", onnx_bytes(student, teacher, example))
        bundle.writestr("README.txt", readme_text(metadata, student))
    cache.atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)
