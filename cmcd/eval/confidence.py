"""Calibrated confidence and "not sure" for a student's zero-label answers.

**Confidence.** The teacher head's logits of student embeddings are divided by one temperature T
fitted on validation items (temperature scaling, Guo et al. 2017: the T with the least negative
log-likelihood), so that answers given with 80 % confidence are right about 80 % of the time.
Dividing by T never changes which class comes first.

**Not sure.** A student answers every input with some class, a scribble or mains hum too. A score
says how familiar an input looks (higher: more like real items); below a threshold the answer is
"not sure". Candidates: the calibrated top probability, the energy T·logsumexp(logits/T), the
cosine similarity to the nearest teacher class prototype, and a detector: a logistic regression
on the student's pooled activations at every stage and its embedding, fitted to tell real
training-split items from generated junk (Modality.junk; outlier exposure, Hendrycks et al.
2019). Each threshold flags REAL_FLAG_RATE of the validation items; the candidate that flags the
most validation junk is kept, the detector counted on junk kinds it was not fitted on
(leave one kind out), so its figure is what it does on kinds of junk it never saw. Kinds a modality
holds out (`JunkKinds.held_out`) are never used here at all: `cmcd bench inputs` reports on them.

Every input goes through the modality's file reader, which normalises it (a drawing is cropped
and redrawn with one pen, a recording trimmed and levelled), so real items are calibrated the same
way: rendered, written as files and read back (cmcd.modalities.read_back). All of it is stored
with the student (`"calibration"` in its JSON); a student saved without it is never "not sure", at
T = 1.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cmcd.modalities import pairs, read_back
from cmcd.models.teacher import Teacher, load_teacher

REAL_FLAG_RATE = 0.05  # share of real validation items flagged "not sure"
FIT_JUNK_SEED = 1  # junk for calibrating; `cmcd bench inputs` measures on another seed
ITEMS = 300  # validation items (threshold, temperature) and training-split items (detector)
JUNK_PER_KIND = 30
DETECTOR_C = 0.1  # inverse L2 strength of the detector's logistic regression
TEMPERATURES = torch.logspace(-1.5, 1.5, 601, dtype=torch.float64)  # 0.03 .. 32


@dataclass
class Outputs:
    """What a student makes of a batch of inputs: the teacher head's logits of its normalised
    embeddings, the embeddings, and its pooled activations at every stage (for the detector)."""

    logits: torch.Tensor
    embeddings: torch.Tensor
    layers: torch.Tensor

    def __len__(self) -> int:
        return len(self.logits)

    def features(self) -> torch.Tensor:
        return torch.cat([self.layers, self.embeddings], dim=1).double()

    def rows(self, keep) -> Outputs:
        return Outputs(self.logits[keep], self.embeddings[keep], self.layers[keep])


def _stages(student) -> list[torch.nn.Module]:
    """The student's stem and residual stages (an ImageEncoder's), whose outputs are pooled."""
    trunk = getattr(student, "trunk", None)
    return [student.stem, *trunk.stages] if trunk is not None and hasattr(student, "stem") else []


@torch.no_grad()
def student_outputs(student, teacher: Teacher, inputs: torch.Tensor, batch_size: int = 512) -> Outputs:
    """Outputs of target inputs through the student, on the CPU."""
    device = next(student.parameters()).device
    pooled: list[torch.Tensor] = []
    caller = threading.get_ident()  # the app's other threads run the same student meanwhile

    def keep(module, args, out):
        if threading.get_ident() == caller:
            pooled.append(out.float().mean((2, 3)))

    hooks = [stage.register_forward_hook(keep) for stage in _stages(student)]
    was_training, parts = student.training, []
    student.eval()
    try:
        for start in range(0, len(inputs), batch_size):
            pooled.clear()
            embeddings = F.normalize(student(inputs[start: start + batch_size].to(device)).float(), dim=1)
            logits = teacher.classify(embeddings.to(teacher.head.weight.device))
            layers = torch.cat(pooled, 1) if pooled else embeddings[:, :0]
            parts.append((logits.cpu(), embeddings.cpu(), layers.cpu()))
    finally:
        student.train(was_training)
        for hook in hooks:
            hook.remove()
    return Outputs(*(torch.cat(column) for column in zip(*parts, strict=True)))


# --- scores (higher: more like real items) -----------------------------------------------------------

def _max_softmax(outputs: Outputs, calibration: Calibration) -> torch.Tensor:
    return F.softmax(outputs.logits.double() / calibration.temperature, dim=1).amax(1)


def _energy(outputs: Outputs, calibration: Calibration) -> torch.Tensor:
    """Negative free energy (Liu et al. 2020): large when the logits are large overall."""
    t = calibration.temperature
    return t * torch.logsumexp(outputs.logits.double() / t, dim=1)


def _prototype(outputs: Outputs, calibration: Calibration) -> torch.Tensor:
    """Cosine similarity to the nearest teacher class prototype, in the shared embedding space."""
    prototypes = F.normalize(calibration.prototypes.double(), dim=1)
    return (F.normalize(outputs.embeddings.double(), dim=1) @ prototypes.T).amax(1)


def _detector(outputs: Outputs, calibration: Calibration) -> torch.Tensor:
    d = calibration.detector
    standard = (outputs.features() - d["mean"]) / d["scale"]
    return -(standard @ d["weights"] + d["bias"])  # the regression's log-odds of junk, negated


SCORES = {"max_softmax": _max_softmax, "energy": _energy, "prototype": _prototype, "detector": _detector}


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    score: str | None = None  # None: never "not sure"
    threshold: float = -math.inf  # scores below it are "not sure"
    prototypes: torch.Tensor | None = None  # (classes, d), for the prototype score
    detector: dict[str, torch.Tensor] | None = None  # mean, scale, weights, bias

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits.double() / self.temperature, dim=1).float()

    def scores(self, outputs: Outputs, kind: str | None = None) -> torch.Tensor:
        return SCORES[kind or self.score](outputs, self)

    def unsure(self, outputs: Outputs) -> torch.Tensor:
        if self.score is None:
            return torch.zeros(len(outputs), dtype=torch.bool)
        return self.scores(outputs) < self.threshold

    def to_json(self) -> dict:
        found = {"temperature": self.temperature, "score": self.score, "threshold": self.threshold}
        if self.score == "prototype":
            found["prototypes"] = _rounded(self.prototypes)
        if self.score == "detector":
            found["detector"] = {name: _rounded(value) for name, value in self.detector.items()}
        return found

    @classmethod
    def from_json(cls, found: dict | None) -> Calibration:
        """The stored calibration; none (an older student): T = 1, never "not sure"."""
        if not found:
            return cls()
        prototypes, detector = found.get("prototypes"), found.get("detector")
        return cls(float(found["temperature"]), found.get("score"), float(found["threshold"]),
                   None if prototypes is None else torch.tensor(prototypes, dtype=torch.float64),
                   None if detector is None else {name: torch.tensor(value, dtype=torch.float64)
                                                  for name, value in detector.items()})


def _rounded(tensor: torch.Tensor):
    """A tensor as (nested) lists of numbers rounded to 6 decimals, for JSON."""
    return np.round(tensor.double().numpy(), 6).tolist()


# --- fitting ---------------------------------------------------------------------------------------

def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels at a temperature."""
    return float(F.cross_entropy(logits.double() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature of TEMPERATURES with the least NLL on (logits, labels): a one-parameter
    fit, so a fine grid is exact enough and never diverges."""
    scaled = logits.double()[None] / TEMPERATURES[:, None, None]  # (temperatures, items, classes)
    picked = scaled.log_softmax(2).gather(2, labels.view(1, -1, 1).expand(len(TEMPERATURES), -1, 1))
    losses = -picked.mean((1, 2))
    return round(float(TEMPERATURES[int(losses.argmin())]), 4)


def fit_detector(real: Outputs, junk: Outputs) -> dict[str, torch.Tensor]:
    """A logistic regression telling junk (1) from real items (0) on standardised features."""
    from sklearn.linear_model import LogisticRegression  # here: importing sklearn costs classify 2 s

    x = torch.cat([real.features(), junk.features()])
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    labels = np.r_[np.zeros(len(real)), np.ones(len(junk))]
    model = LogisticRegression(C=DETECTOR_C, max_iter=5000, class_weight="balanced")
    model.fit(((x - mean) / scale).numpy(), labels)
    return {"mean": mean, "scale": scale, "weights": torch.from_numpy(model.coef_[0]).double(),
            "bias": torch.tensor(float(model.intercept_[0]), dtype=torch.float64)}


def _threshold(real_scores: torch.Tensor) -> float:
    return float(torch.quantile(real_scores.double(), REAL_FLAG_RATE))


def _flagged(scores: torch.Tensor, threshold: float) -> float:
    return round(float((scores < threshold).double().mean()), 4) if len(scores) else 0.0


def _auroc(real_scores: torch.Tensor, junk_scores: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score  # here, as in fit_detector

    labels = [0] * len(real_scores) + [1] * len(junk_scores)
    return round(float(roc_auc_score(labels, torch.cat([-real_scores, -junk_scores]).tolist())), 4)


@dataclass
class FitSet:
    """Everything calibration is fitted on: validation items (with labels), training-split items,
    and junk (with its kinds), each as the student's outputs."""

    val: Outputs
    val_labels: torch.Tensor
    train: Outputs
    junk: Outputs
    junk_kinds: list[str]
    prototypes: torch.Tensor


def _compare_fixed(fit: FitSet, base: Calibration) -> dict:
    compared = {}
    for kind in ("max_softmax", "energy", "prototype"):
        real, junk = base.scores(fit.val, kind), base.scores(fit.junk, kind)
        threshold = _threshold(real)
        compared[kind] = {"threshold": threshold, "junk_flagged": _flagged(junk, threshold),
                          "auroc": _auroc(real, junk)}
    return compared


def _held_out_detector(fit: FitSet, base: Calibration) -> dict:
    """The detector's junk flag rate on each kind when fitted without that kind."""
    kinds = np.array(fit.junk_kinds)
    by_kind = {}
    for kind in dict.fromkeys(fit.junk_kinds):
        trial = Calibration(base.temperature, detector=fit_detector(fit.train, fit.junk.rows(kinds != kind)))
        threshold = _threshold(trial.scores(fit.val, "detector"))
        by_kind[kind] = _flagged(trial.scores(fit.junk.rows(kinds == kind), "detector"), threshold)
    return by_kind


def fit_calibration(fit: FitSet) -> tuple[Calibration, dict]:
    """The calibration, and a report of what each candidate score gave on validation."""
    base = Calibration(fit_temperature(fit.val.logits, fit.val_labels), prototypes=fit.prototypes,
                       detector=fit_detector(fit.train, fit.junk))
    compared = _compare_fixed(fit, base)
    held_out = _held_out_detector(fit, base)
    real = base.scores(fit.val, "detector")
    compared["detector"] = {"threshold": _threshold(real),
                            "junk_flagged": round(float(np.mean(list(held_out.values()))), 4),
                            "junk_flagged_by_kind_held_out": held_out,
                            "auroc": _auroc(real, base.scores(fit.junk, "detector"))}
    best = max(compared, key=lambda kind: (compared[kind]["junk_flagged"], compared[kind]["auroc"]))
    calibration = Calibration(base.temperature, best, compared[best]["threshold"], fit.prototypes,
                              base.detector)
    report = {"nll": {"before": round(nll(fit.val.logits, fit.val_labels), 4),
                      "after": round(nll(fit.val.logits, fit.val_labels, base.temperature), 4)},
              "scores": compared, "val_items": len(fit.val), "train_items": len(fit.train),
              "junk_items": len(fit.junk)}
    return calibration, report


def teacher_prototypes(teacher: Teacher, spec: pairs.PairSpec, rows: np.ndarray) -> torch.Tensor:
    """Class means of the teacher's embeddings of the rows' photos (source labels only)."""
    request = read_back.split_request(spec, "val", rows, 0.0, options={})
    photos, labels = teacher.embed(spec.source.render(request)).cpu(), torch.from_numpy(request.labels)
    return torch.stack([photos[labels == c].mean(0) for c in range(int(labels.max()) + 1)])


@functools.lru_cache(maxsize=8)
def fit_inputs(pair: str, gap: float, items: int, per_kind: int) -> tuple[read_back.ReadBack, ...]:
    """A pair's validation and training items and its modality's junk, written as files and read
    back: the part of a fit set no student changes, made once per process (for a sketch student
    on a CPU it is most of a calibration: writing and reading some 900 files). Read-only."""
    spec = pairs.get_spec(pair)
    val = read_back.items_read_back(spec, "val", read_back.spread_rows(spec, "val", items), gap)
    train = read_back.items_read_back(spec, "pairs", read_back.spread_rows(spec, "pairs", items), gap)
    junk = read_back.junk_read_back(spec.target, FIT_JUNK_SEED, per_kind, spec.target.junk.calibration_kinds)
    if junk.samples is None:
        raise ValueError(f"no junk of {spec.target} reached the student")
    return val, train, junk


def calibration_fit_set(student, teacher: Teacher, spec: pairs.PairSpec, gap: float,
                        items: int = ITEMS, per_kind: int = JUNK_PER_KIND) -> FitSet:
    val, train, junk = fit_inputs(spec.name, gap, items, per_kind)
    return FitSet(student_outputs(student, teacher, val.samples), torch.tensor(val.tags),
                  student_outputs(student, teacher, train.samples),
                  student_outputs(student, teacher, junk.samples), junk.tags,
                  teacher_prototypes(teacher, spec, read_back.spread_rows(spec, "val", 1000)))


def calibrate_student(student, pair: str, teacher_variant: str = "ft", gap: float | None = None,
                      items: int = ITEMS, per_kind: int = JUNK_PER_KIND) -> dict | None:
    """A student's calibration, fitted on its pair's validation and training-split items and on
    junk of its modality: what its JSON stores under "calibration" (the report under
    "validation"). None for a modality that cannot write files or has no junk."""
    spec = pairs.get_spec(pair)
    if spec.target.write_files is None or spec.target.junk is None:
        return None
    gap = spec.default_gap if gap is None else pairs.check_gap(gap)
    teacher = load_teacher(spec.dataset, teacher_variant)
    fit = calibration_fit_set(student, teacher, spec, gap, items, per_kind)
    calibration, report = fit_calibration(fit)
    report |= {"junk_seed": FIT_JUNK_SEED, "junk_per_kind": per_kind,
               "real_flag_rate": REAL_FLAG_RATE, "gap": gap}
    return {**calibration.to_json(), "validation": report}
