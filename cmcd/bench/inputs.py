"""`cmcd bench inputs`: the shipped students on inputs as people give them.

For every pair with a shipped student, everything goes through the modality's file reader (or
the sketch pad's), as a visitor's input does:
- synthetic test split: accuracy on the rendered test items (what `cmcd distill` reports), and
  accuracy, "not sure" rate and calibration error (ECE, before and after the temperature) on
  test items written as files and read back;
- real samples, where the modality has them installed (Asterisk's "Allison" saying the digits
  0-9: a real person, never used for training, calibration or any choice): accuracy and "not sure";
- real speakers (spoken digits): the leave-one-speaker-out figures recorded when the student was
  calibrated (cmcd.eval.people): accuracy per held-out FSDD speaker and their mean, "not sure" rate
  and ECE on them, each fold at a temperature and cut fitted on the other folds;
- digits drawn in other styles (cmcd.modalities.sketch.drawn_styles: fat marker, slant, small and off-centre,
  wobble, pencil, chalk, a thin pen and a fat marker over pen strokes), through the sketch pad's
  reader: accuracy and "not sure" rate per style;
- junk (cmcd.modalities.NAME.junk, drawn with a seed calibration never saw): per kind, the share flagged "not
  sure" or refused by the reader with a clear error ("caught");
- the shipped examples (cmcd/shipped/examples): correct and "not sure".
Writes OUT/inputs.json; the README's and the app's real-input figures are read from it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from cmcd import paths
from cmcd.data import cache
from cmcd.eval import confidence
from cmcd.eval.classify import Classifier, has_shipped_student, weights_digest
from cmcd.eval.metrics import expected_calibration_error
from cmcd.eval.records import ZERO_LABEL_HEAD
from cmcd.modalities import pairs, read_back
from cmcd.modalities.sketch import drawn_styles

BENCH_JUNK_SEED = 2  # calibration fits on FIT_JUNK_SEED
JUNK_PER_KIND = 30
TEST_FILES = 200  # test items written as files and read back
STYLE_ITEMS = 60  # per style, 6 per class
STYLE_SEED = 2
def _rates(results: list[dict], labels: list | None = None) -> dict:
    unsure = [r["unsure"] for r in results]
    found = {"n": len(results), "unsure": round(float(np.mean(unsure)), 4) if results else 0.0}
    if labels is not None:
        right = [r["label"] == label for r, label in zip(results, labels, strict=True)]
        found |= {"accuracy": round(float(np.mean(right)), 4), "correct": int(sum(right)),
                  "accuracy_when_sure": round(float(np.mean([g for g, u in zip(right, unsure, strict=True)
                                                              if not u] or [0.0])), 4)}
    return found


def synthetic_test(model: Classifier) -> dict:
    """Accuracy on the rendered test split, and on test items read back from files."""
    spec = model.spec
    data = pairs.load_pair(spec.name, progress=lambda message: None)
    rendered = model.predict_many(data.test.target)
    read = read_back.items_read_back(spec, "test", read_back.spread_rows(spec, "test", TEST_FILES),
                                      data.gap)
    outputs = confidence.student_outputs(model.student, model.teacher, read.samples)
    labels = torch.tensor(read.tags)
    names = [model.class_names[label] for label in read.tags]
    uncalibrated = confidence.Calibration().probabilities(outputs.logits)
    return {"rendered": {"n": len(rendered), "accuracy": _rates(rendered, [model.class_names[int(v)]
                                                                  for v in data.test.labels])["accuracy"]},
            "as_files": {**_rates(model.predict_many(read.samples), names),
                         "refused": sum(read.refused.values()),
                         "ece": {"before": expected_calibration_error(uncalibrated, labels),
                                 "after": expected_calibration_error(
                                     model.calibration.probabilities(outputs.logits), labels)}}}


def real_samples(model: Classifier) -> dict | None:
    modality = model.spec.target
    found = modality.real_samples() if modality.real_samples else None
    if found is None:
        return None
    features, labels = found
    results = model.predict_many(features)
    what = " ".join((modality.real_samples.__doc__ or "real samples").split()).split(", when")[0]
    return {"what": what, **_rates(results, [model.class_names[int(v)] for v in labels]),
            "predicted": [r["label"] for r in results], "unsure_items": [r["unsure"] for r in results]}


def drawn_styles_of(model: Classifier) -> dict | None:
    """Digits drawn in other styles, read as the sketch pad's drawings are; the styles that draw
    from a glyph take MNIST's test items (real handwriting, never the added people's items)."""
    spec = model.spec
    if spec.dataset != "digits" or spec.target.read_drawing is None:
        return None
    source = pairs.source_images(spec.dataset)
    test = pairs.split_indices(source)["test"]
    handwritten = test[test < len(source.ids) - source.added]
    rows = np.sort(handwritten[np.random.default_rng(0).permutation(len(handwritten))[:STYLE_ITEMS]])
    read = drawn_styles.read_in_every_style(spec.target.read_drawing_of, source.images[rows],
                                            source.labels[rows], STYLE_SEED)
    names = [model.class_names[int(label)] for label in source.labels[rows]]
    return {style: _rates(model.predict_many(samples), names) for style, samples in read.items()}


def peoples_ways(styles: dict) -> dict:
    """Accuracy and "not sure" over the drawn styles of people's ways of writing, all together."""
    rows = [styles[style] for style in drawn_styles.PEOPLES_WAYS]
    total = sum(row["n"] for row in rows)
    return {"styles": list(drawn_styles.PEOPLES_WAYS), "n": total,
            "accuracy": round(sum(row["correct"] for row in rows) / total, 4),
            "unsure": round(sum(row["unsure"] * row["n"] for row in rows) / total, 4)}


def junk_of(model: Classifier, read: read_back.ReadBack) -> dict:
    """Per junk kind: the share refused by the reader, flagged "not sure", and either ("caught")."""
    results = model.predict_many(read.samples) if read.samples is not None else []
    found = {}
    for kind, made in read.made.items():
        flagged = sum(r["unsure"] for r, tag in zip(results, read.tags, strict=True) if tag == kind)
        refused = read.refused[kind]
        found[kind] = {"n": made, "refused": round(refused / made, 4), "unsure": round(flagged / made, 4),
                       "caught": round((refused + flagged) / made, 4)}
    return found


def examples_of(model: Classifier) -> dict:
    files = sorted(path for path in paths.examples_dir().glob(f"{model.spec.name}__*")
                   if path.suffix in (".png", ".npy", ".wav"))
    results = [model.predict_file(path) for path in files]
    by_file_name = {name.replace("/", "-"): name for name in model.class_names}
    labels = [by_file_name[path.name.split("__")[1]] for path in files]
    return {**_rates(results, labels), "files": [path.name for path in files]}


def real_speakers_of(model: Classifier) -> dict | None:
    """Real people the student's recipe never heard, as its calibration measured them on its
    leave-one-speaker-out folds (cmcd.eval.people): each fold's student on its held-out speaker,
    at the temperature and "not sure" cut fitted on the other folds alone."""
    report = (model.metadata.get("calibration") or {}).get("validation", {}).get("held_out_speakers")
    if not report:
        return None
    rows = report["per_speaker"]
    return {"what": "leave-one-speaker-out over the shipped FSDD speakers (recorded at calibration)",
            "loso_accuracy": {speaker: row["accuracy"] for speaker, row in rows.items()},
            "loso_mean": report["mean_accuracy"], "unsure": report["mean_unsure"],
            "unsure_per_speaker": {speaker: row["unsure"] for speaker, row in rows.items()},
            "ece": {"before": report["mean_ece_before"], "after": report["mean_ece"]},
            "junk_flagged_held_out_kinds": report["mean_junk_flagged_by_kind_held_out"]}


def _calibration_summary(model: Classifier) -> dict | None:
    stored = model.metadata.get("calibration")
    if not stored:
        return None
    if "scores" not in stored["validation"]:  # fitted on real speakers (cmcd.eval.people)
        return {"score": stored["score"], "temperature": stored["temperature"],
                "fitted_on": stored["validation"]["method"]}
    scores = stored["validation"]["scores"]
    return {"score": stored["score"], "temperature": stored["temperature"],
            "validation_nll": stored["validation"]["nll"],
            "validation_junk_flagged": {kind: row["junk_flagged"] for kind, row in scores.items()},
            "validation_auroc": {kind: row["auroc"] for kind, row in scores.items()}}


def bench_pair(pair: str, junk: read_back.ReadBack) -> dict:
    model = Classifier(pair)
    entry = {"student_digest": weights_digest(pair), "method": model.metadata.get("method"),
             "test_accuracy_recorded": ZERO_LABEL_HEAD.read(model.metadata["metrics"]),
             "calibration": _calibration_summary(model), "synthetic_test": synthetic_test(model),
             "junk": junk_of(model, junk), "examples": examples_of(model)}
    caught = [row["caught"] * row["n"] for row in entry["junk"].values()]
    entry["junk_caught"] = round(sum(caught) / sum(row["n"] for row in entry["junk"].values()), 4)
    for name, measure in (("real_samples", real_samples), ("real_speakers", real_speakers_of),
                          ("drawn_styles", drawn_styles_of)):
        found = measure(model)
        if found is not None:
            entry[name] = found
    if "drawn_styles" in entry:
        entry["peoples_ways"] = peoples_ways(entry["drawn_styles"])
    return entry


def run(out: str = "results") -> dict:
    started = time.perf_counter()
    names = [name for name in pairs.PAIRS if has_shipped_student(name)]
    junk: dict[str, read_back.ReadBack] = {}
    report = {"pairs": {}, "junk_seed": BENCH_JUNK_SEED, "junk_per_kind": JUNK_PER_KIND,
              "style_items": STYLE_ITEMS, "test_files": TEST_FILES}
    for name in names:
        modality = pairs.get_spec(name).target
        if modality.name not in junk:
            junk[modality.name] = read_back.junk_read_back(modality, BENCH_JUNK_SEED, JUNK_PER_KIND)
        report["pairs"][name] = bench_pair(name, junk[modality.name])
    report["wall_s"] = round(time.perf_counter() - started, 1)
    path = Path(out) / "inputs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.atomic_write_json(path, report)
    return report


def _pair_lines(name: str, entry: dict) -> list[str]:
    test = entry["synthetic_test"]
    files = test["as_files"]
    lines = [f"{name}: synthetic test {test['rendered']['accuracy']:.3f} rendered, "
             f"{files['accuracy']:.3f} as files ({files['unsure']:.1%} not sure; ECE "
             f"{files['ece']['before']:.3f} -> {files['ece']['after']:.3f}); junk caught "
             f"{entry['junk_caught']:.1%}; examples {entry['examples']['correct']}/"
             f"{entry['examples']['n']} right, {entry['examples']['unsure']:.0%} not sure"]
    caught = ", ".join(f"{kind} {row['caught']:.0%}" for kind, row in entry["junk"].items())
    lines.append(f"    junk caught: {caught}")
    if "real_samples" in entry:
        real = entry["real_samples"]
        lines.append(f"    real recordings: {real['correct']}/{real['n']} right, "
                     f"{sum(real['unsure_items'])} not sure (read as {' '.join(real['predicted'])})")
    if "real_speakers" in entry:
        people = entry["real_speakers"]
        held_out = ", ".join(f"{who} {accuracy:.3f}" for who, accuracy in people["loso_accuracy"].items())
        lines.append(f"    real speakers held out: mean {people['loso_mean']:.3f} ({held_out}); "
                     f"{people['unsure']:.1%} not sure; ECE {people['ece']['before']:.3f} -> "
                     f"{people['ece']['after']:.3f}")
    for style, row in entry.get("drawn_styles", {}).items():
        lines.append(f"    drawn {style:23s} accuracy {row['accuracy']:.2f}, not sure {row['unsure']:.0%}")
    if "peoples_ways" in entry:
        ways = entry["peoples_ways"]
        lines.append(f"    people's ways of writing: accuracy {ways['accuracy']:.2f}, "
                     f"not sure {ways['unsure']:.0%}")
    return lines


def format_report(report: dict) -> str:
    lines = []
    for name, entry in report["pairs"].items():
        lines += _pair_lines(name, entry)
    lines.append(f"({report['wall_s']} s)")
    return "\n".join(lines)
