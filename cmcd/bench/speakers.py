"""Leave-one-speaker-out on real people: how many real recordings go into the spoken digits'
training pairs, chosen on speakers the student never heard.

For each share of real voices (a `digits-audio-real-PERCENT` variant, cmcd.modalities.pairs) and each of
the four shipped FSDD speakers, a student is distilled without that speaker
(`...-heldout-SPEAKER`) and scored on all of that speaker's recordings; a share of 0 needs one run,
scored on every speaker. Every run also records the zero-label accuracy on the synthetic validation
voices (unseen voices); the test split is never read. Runs use the shipped student's method,
teacher and augmentation (at the benchmark's 5 epochs and width 16 unless told otherwise), and each
fold's student is saved under runs/speakers/ so that the calibration can be fitted on speakers its
student never heard (cmcd.eval.people).

    python scripts/real_speakers.py [--shares 0 25 50] [--seeds 0] [--epochs 5] [--width 16]

Writes OUT/speakers.json; runs already in it are kept, so an interrupted study resumes.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from cmcd.bench.ingredients import shipped_recipe
from cmcd.data import cache
from cmcd.eval import speakers
from cmcd.modalities import pairs
from cmcd.modalities.audio import REAL_SPEAKERS
from cmcd.models.checkpoints import load_student, save_student
from cmcd.models.teacher import teacher_digest
from cmcd.train.config import DistillConfig
from cmcd.train.distill import validation_run

PAIR = "digits-audio"
FOLDS_DIR = Path("runs") / "speakers"


@dataclass(frozen=True)
class Plan:
    shares: tuple[int, ...] = (0, 25, 50)  # percent of the training pairs spoken by real people
    seeds: tuple[int, ...] = (0,)
    epochs: int = 5
    width: int = 16
    speakers: tuple[str, ...] = REAL_SPEAKERS  # those held out in turn

    def variants(self) -> list[tuple[int, str | None]]:
        """(share, held-out speaker), speaker by speaker, so that an early look compares every
        share on the same speakers; speaker None: nobody real in training, scored on everyone."""
        return [(0, None)] * (0 in self.shares) + [
            (share, speaker) for speaker in self.speakers for share in self.shares if share]


def variant_name(share: int, speaker: str | None) -> str:
    return f"{PAIR}{pairs.REAL}{share}" + (f"{pairs.HELD_OUT}{speaker}" if speaker else "")


def fold_stem(plan: Plan, name: str, seed: int) -> Path:
    return FOLDS_DIR / f"{name}-e{plan.epochs}-w{plan.width}-s{seed}"


def fold_students(plan: Plan, share: int, seed: int = 0) -> dict[str, torch.nn.Module]:
    """{held-out speaker: that fold's saved student} for one share, or a clear error."""
    found = {}
    for speaker in REAL_SPEAKERS:
        stem = fold_stem(plan, variant_name(share, speaker), seed)
        if not stem.with_suffix(".safetensors").exists():
            raise FileNotFoundError(f"no fold student at {stem}.safetensors: run scripts/real_speakers.py "
                                    f"--shares {share} --epochs {plan.epochs} --width {plan.width} first")
        student, metadata = load_student(stem)
        if metadata.get("teacher_digest") != _teacher_digest():
            raise ValueError(f"the fold student at {stem} was distilled from another teacher than today's "
                             f"{PAIR} teacher: run scripts/real_speakers.py --shares {share} --epochs "
                             f"{plan.epochs} --width {plan.width} again")
        found[speaker] = student
    return found


def _teacher_digest() -> str:
    return teacher_digest(pairs.get_spec(PAIR).dataset, shipped_recipe(PAIR)["teacher"])


def run_one(plan: Plan, share: int, speaker: str | None, seed: int) -> dict:
    name = variant_name(share, speaker)
    config = DistillConfig(pair=name, seed=seed, epochs=plan.epochs, width=plan.width,
                           **shipped_recipe(PAIR))

    def checks(student, head, spec) -> dict:
        save_student(fold_stem(plan, name, seed), student,
                     {"pair": PAIR, "variant": name, "held_out_speaker": speaker,
                      "config": config.to_dict(), "teacher": config.teacher, "method": config.method,
                      "teacher_digest": _teacher_digest()})
        scored = (speaker,) if speaker else REAL_SPEAKERS
        return {"speakers": {who: speakers.speaker_accuracy(student, head, who)["head"] for who in scored}}

    metrics = validation_run(config, checks=checks)
    return {"share": share, "held_out": speaker, "seed": seed, "variant": name,
            "validation": metrics["validation"]["head"], "speakers": metrics["checks"]["speakers"],
            "train_s": metrics["train_s"], "wall_s": metrics["wall_s"]}


def summary(runs: list[dict], plan: Plan) -> dict:
    """Per share: each speaker's accuracy when held out (mean over seeds), their mean, and the
    synthetic validation accuracy (mean over the share's runs)."""
    found = {}
    for share in plan.shares:
        mine = [run for run in runs if run["share"] == share]
        scores = {who: [run["speakers"][who] for run in mine if who in run["speakers"]]
                  for who in REAL_SPEAKERS}
        per_speaker = {who: round(statistics.mean(values), 4) for who, values in scores.items() if values}
        if per_speaker:
            found[str(share)] = {
                "loso": per_speaker, "loso_mean": round(statistics.mean(per_speaker.values()), 4),
                "synthetic_validation": round(statistics.mean(run["validation"] for run in mine), 4),
                "runs": len(mine)}
    return found


def choose_share(found: dict) -> dict:
    """The share with the highest leave-one-speaker-out mean (a tie: the smaller share), from a
    summary; the held-out speakers are this study's validation, the test split is never read."""
    best = max(sorted(found, key=int), key=lambda share: found[share]["loso_mean"])
    return {"share": int(best), "loso_mean": found[best]["loso_mean"],
            "rule": "the highest leave-one-speaker-out mean accuracy; a tie goes to the smaller share"}


def report_of(settings: dict, runs: list[dict], plan: Plan) -> dict:
    found = summary(runs, plan)
    return {"settings": settings, "runs": runs, "summary": found, "choice": choose_share(found)}


def study_settings(epochs: int, width: int) -> dict:
    """What a study's runs depend on: their length, the shipped recipe and today's teacher."""
    return {"epochs": epochs, "width": width, **shipped_recipe(PAIR), "teacher_digest": _teacher_digest()}


def run(plan: Plan, out: str = "results") -> dict:
    path = Path(out) / "speakers.json"
    previous = cache.read_json(path) if path.exists() else None
    # a study's runs are kept only while its recipe and teacher stay the same
    settings = study_settings(plan.epochs, plan.width)
    runs = previous["runs"] if previous and previous.get("settings") == settings else []
    for seed in plan.seeds:
        for share, speaker in plan.variants():
            if any(r["variant"] == variant_name(share, speaker) and r["seed"] == seed for r in runs):
                continue
            runs.append(run_one(plan, share, speaker, seed))
            print(f"{runs[-1]['variant']} seed {seed}: held out {runs[-1]['speakers']}, synthetic "
                  f"validation {runs[-1]['validation']:.3f} ({runs[-1]['wall_s']:.0f} s)", file=sys.stderr,
                  flush=True)
            cache.atomic_write_json(path, report_of(settings, runs, plan))
    report = report_of(settings, runs, plan)
    cache.atomic_write_json(path, report)
    return report
