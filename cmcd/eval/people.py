"""Calibrating the spoken-digit student on real people it never heard: a "not sure" that knows people.

The shipped student hears all four shipped FSDD speakers in training, so no real speaker is left to
calibrate it on. Its leave-one-speaker-out folds are (cmcd.bench.speakers: the same recipe, each
trained without one speaker): each fold's student meets its held-out speaker the way the shipped
student meets a new person. So the calibration is cross-validated over the folds:

- **Temperature**: the T with the least NLL on the pooled held-out speakers (each fold's student
  on the speaker it never heard). Folds trained with a shorter recipe than the shipped student's
  are less confident, so what carries over is the ratio of that T to the folds' T on the
  synthetic validation voices: the shipped student's T is its own validation T times that ratio.
- **Threshold**: each student's detector (cmcd.eval.confidence: a logistic regression telling its
  training items, real speakers included, from generated junk) scores a new speaker lower than
  the items it trained on. Scores are therefore standardised against the student's own training
  items (z = (score - mean) / std); the cut z* flags REAL_FLAG_RATE of the pooled held-out
  speakers (and at most that share of the synthetic validation voices), and the shipped
  student's threshold is its own training items' mean + z* * std.
- **Figures** (nested, so none is measured on what it was fitted on): fold k is scored with T and
  z* fitted on the other folds alone: ECE and "not sure" rate on its held-out speaker; junk flagged
  per kind with that kind left out of the detector's fit.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import torch

from cmcd.eval import confidence, speakers
from cmcd.eval.confidence import Calibration, Outputs, fit_detector, fit_temperature, student_outputs
from cmcd.eval.metrics import expected_calibration_error
from cmcd.modalities import pairs, read_back
from cmcd.models.teacher import load_teacher

REAL_FLAG_RATE = confidence.REAL_FLAG_RATE
CLIPS_PER_SPEAKER = 100  # of each training speaker, among the items the detector calls real


@dataclass
class SharedInputs:
    """What every student is shown, read once: synthetic validation and training-split items
    (written as files and read back) and junk of the FIT seed."""

    val: torch.Tensor
    val_labels: torch.Tensor
    train: torch.Tensor
    junk: torch.Tensor
    junk_kinds: list[str]


@dataclass
class View:
    """One student's outputs on the shared inputs, its training speakers' clips and (a fold) the
    speaker it never heard."""

    train: Outputs  # synthetic training items and its training speakers' clips
    val: Outputs
    val_labels: torch.Tensor
    junk: Outputs
    junk_kinds: list[str]
    held_out: Outputs | None = None
    held_out_labels: torch.Tensor | None = None
    held_out_speaker: str | None = None


def shared_inputs(pair: str, items: int = confidence.ITEMS, per_kind: int = confidence.JUNK_PER_KIND):
    spec = pairs.get_spec(pair)
    gap = spec.default_gap
    val = read_back.items_read_back(spec, "val", read_back.spread_rows(spec, "val", items), gap)
    synthetic = pairs.get_spec(f"{pair}{pairs.REAL}0")  # real speakers join per student, below
    train = read_back.items_read_back(synthetic, "pairs", read_back.spread_rows(spec, "pairs", items), gap)
    junk = read_back.junk_read_back(spec.target, confidence.FIT_JUNK_SEED, per_kind,
                                   spec.target.junk.calibration_kinds)
    return SharedInputs(val.samples, torch.tensor(val.tags), train.samples, junk.samples, junk.tags)


def _speaker_clips(names) -> tuple[torch.Tensor, torch.Tensor]:
    found = [speakers.speaker_samples(name) for name in names]
    picks = [torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:CLIPS_PER_SPEAKER]
             for _, labels in found]
    return (torch.cat([features[p] for (features, _), p in zip(found, picks, strict=True)]),
            torch.cat([labels[p] for (_, labels), p in zip(found, picks, strict=True)]))


def view_of(student, teacher, shared: SharedInputs, trained_on, held_out: str | None = None) -> View:
    def outputs(x):
        return student_outputs(student, teacher, x)

    heard = [_speaker_clips(trained_on)[0]] if trained_on else []
    view = View(outputs(torch.cat([shared.train, *heard])), outputs(shared.val), shared.val_labels,
                outputs(shared.junk), shared.junk_kinds)
    if held_out is not None:
        features, labels = speakers.speaker_samples(held_out)
        view.held_out, view.held_out_labels, view.held_out_speaker = outputs(features), labels, held_out
    return view


def _standardiser(view: View, detector: dict) -> tuple[float, float]:
    scores = Calibration(detector=detector).scores(view.train, "detector")
    return float(scores.mean()), float(scores.std().clamp_min(1e-6))


def _z_scores(view: View, detector: dict, outputs: Outputs) -> torch.Tensor:
    mean, std = _standardiser(view, detector)
    return (Calibration(detector=detector).scores(outputs, "detector") - mean) / std


def fit_cut(folds: list[View], detectors: list[dict]) -> tuple[float, float]:
    """(T, z*) from fold views: T on the pooled held-out speakers, z* flagging REAL_FLAG_RATE of
    them and at most that share of the synthetic validation voices."""
    logits = torch.cat([view.held_out.logits for view in folds])
    labels = torch.cat([view.held_out_labels for view in folds])
    real = torch.cat([_z_scores(v, d, v.held_out) for v, d in zip(folds, detectors, strict=True)])
    synthetic = torch.cat([_z_scores(v, d, v.val) for v, d in zip(folds, detectors, strict=True)])
    cut = min(float(torch.quantile(real.double(), REAL_FLAG_RATE)),
              float(torch.quantile(synthetic.double(), REAL_FLAG_RATE)))
    return fit_temperature(logits, labels), cut


def _junk_flagged_by_kind(view: View, cut: float) -> dict[str, float]:
    """Junk flagged per kind by a detector fitted without that kind (kinds it never saw)."""
    kinds = np.array(view.junk_kinds)
    found = {}
    for kind in dict.fromkeys(view.junk_kinds):
        detector = fit_detector(view.train, view.junk.rows(kinds != kind))
        found[kind] = round(float((_z_scores(view, detector, view.junk.rows(kinds == kind)) < cut)
                                  .double().mean()), 4)
    return found


def _val_temperature(views: list[View]) -> float:
    return fit_temperature(torch.cat([view.val.logits for view in views]),
                           torch.cat([view.val_labels for view in views]))


def _fold_figures(view: View, detector: dict, temperature: float, cut: float) -> dict:
    """A fold's held-out speaker and junk, at a temperature and cut fitted without this fold."""
    probabilities = Calibration(temperature).probabilities(view.held_out.logits)
    flagged = _z_scores(view, detector, view.held_out) < cut
    right = probabilities.argmax(1) == view.held_out_labels
    sure = right[~flagged]
    return {"n": len(right), "accuracy": round(float(right.double().mean()), 4),
            "ece": expected_calibration_error(probabilities, view.held_out_labels),
            "ece_before": expected_calibration_error(Calibration().probabilities(view.held_out.logits),
                                                     view.held_out_labels),
            "unsure": round(float(flagged.double().mean()), 4),
            "accuracy_when_sure": round(float(sure.double().mean()), 4) if len(sure) else 0.0,
            "temperature": temperature, "junk_flagged_by_kind_held_out": _junk_flagged_by_kind(view, cut)}


def nested_report(folds: list[View], detectors: list[dict]) -> dict:
    """Each fold scored with T and z* fitted on the other folds alone, and the means over folds."""
    per_speaker = {}
    for k, view in enumerate(folds):
        others = [i for i in range(len(folds)) if i != k]
        temperature, cut = fit_cut([folds[i] for i in others], [detectors[i] for i in others])
        per_speaker[view.held_out_speaker] = _fold_figures(view, detectors[k], temperature, cut)
    rows = list(per_speaker.values())
    kinds = rows[0]["junk_flagged_by_kind_held_out"]
    return {"per_speaker": per_speaker,
            **{f"mean_{name}": round(statistics.mean(row[name] for row in rows), 4)
               for name in ("accuracy", "ece", "ece_before", "unsure")},
            "mean_junk_flagged_by_kind_held_out": {
                kind: round(statistics.mean(row["junk_flagged_by_kind_held_out"][kind] for row in rows), 4)
                for kind in kinds}}


def calibrate_with_folds(student, pair: str, fold_students: dict[str, torch.nn.Module],
                         teacher_variant: str = "ft", heard: tuple[str, ...] | None = None) -> dict:
    """The shipped student's calibration (what its JSON stores under "calibration"), fitted on
    its leave-one-speaker-out folds {held-out speaker: fold student}; the nested figures under
    "validation". `heard`: the real speakers the shipped student trained on (default: all of the
    pair's); a student that heard none of them is its own fold for every speaker."""
    spec = pairs.get_spec(pair)
    everyone = tuple(spec.render_options["real_speakers"]) if heard is None else heard
    teacher = load_teacher(spec.dataset, teacher_variant)
    shared = shared_inputs(pair)
    folds = [view_of(fold, teacher, shared, [s for s in everyone if s != speaker], speaker)
             for speaker, fold in fold_students.items()]
    detectors = [fit_detector(view.train, view.junk) for view in folds]
    fold_temperature, cut = fit_cut(folds, detectors)
    shipped = view_of(student, teacher, shared, everyone)
    temperatures = {"folds_on_held_out_speakers": fold_temperature,
                    "folds_on_synthetic_validation": _val_temperature(folds),
                    "shipped_on_synthetic_validation": _val_temperature([shipped])}
    # How much more over-confident a student is on a new person than on the synthetic validation
    # voices, measured on the folds, carried over to the shipped student (exact when the folds
    # were trained with the shipped student's recipe, an estimate when they were shorter).
    temperature = round(temperatures["shipped_on_synthetic_validation"] * fold_temperature
                        / temperatures["folds_on_synthetic_validation"], 4)
    detector = fit_detector(shipped.train, shipped.junk)
    mean, std = _standardiser(shipped, detector)
    calibration = Calibration(temperature, "detector", mean + cut * std, detector=detector)
    report = {"method": "leave-one-speaker-out folds", "heard_real_speakers": list(everyone),
              "z_cut": round(cut, 4), "temperatures": temperatures,
              "held_out_speakers": nested_report(folds, detectors), "real_flag_rate": REAL_FLAG_RATE,
              "junk_seed": confidence.FIT_JUNK_SEED, "val_items": len(shared.val_labels),
              "junk_items": len(shared.junk_kinds), "clips_per_training_speaker": CLIPS_PER_SPEAKER,
              "synthetic_val_unsure": round(float(calibration.unsure(shipped.val).double().mean()), 4)}
    return {**calibration.to_json(), "validation": report}
