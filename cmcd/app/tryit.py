"""The Try it tab: a visitor's drawing, upload or recording, classified by the pair's shipped
student, with the nearest test photos."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from cmcd import paths
from cmcd.app.shipped import (
    classifier,
    item_photos,
    picture,
    picture_file,
    shipped_test_embeddings,
    student_digest,
)
from cmcd.data.inputs import InputError, drawing_array
from cmcd.eval.classify import describe, has_shipped_student
from cmcd.eval.metrics import nearest_neighbours
from cmcd.eval.records import ZERO_LABEL_HEAD
from cmcd.eval.results import read_results
from cmcd.modalities import Modality, pairs
from cmcd.models.embed import embed


def drawing_to_grey(image: np.ndarray) -> np.ndarray:
    """A sketch-pad image (H, W), (H, W, 3) or (H, W, 4) -> greyscale in [0, 1] on white paper
    (transparent pixels are paper)."""
    image = drawing_array(image).astype(np.float32)
    if image.max() > 1.0:
        image = image / 255.0
    if image.ndim == 2:
        return image
    rgb, alpha = image[..., :3], (image[..., 3:4] if image.shape[-1] == 4 else 1.0)
    return (rgb * alpha + (1.0 - alpha)).mean(axis=-1)


def chosen_pair(pair) -> str:
    """`pair` when a student ships for it; else an InputError naming the pairs that have one
    (an API or MCP caller may send no pair at all)."""
    if isinstance(pair, str) and pair in pairs.PAIRS and has_shipped_student(pair):
        return pair
    shipped = [name for name in pairs.PAIRS if has_shipped_student(name)]
    raise InputError(f"no shipped student for the pair {pair!r}; choose one of {', '.join(shipped)}")


def _drawing_sample(pair: str, editor_value):
    pair = chosen_pair(pair)
    image = editor_value.get("composite") if isinstance(editor_value, dict) else editor_value
    if image is None:
        raise InputError("draw something on the sketch pad first, or upload a PNG or JPEG picture "
                         "to it (a file the browser cannot show leaves the pad empty)")
    return pairs.get_spec(pair).target.read_drawing_of(drawing_to_grey(image))


def _upload_sample(pair: str, path):
    pair = chosen_pair(pair)
    if not path:
        raise InputError("upload a file first")
    return pairs.get_spec(pair).target.read_file(Path(path))


def nearest_photos(pair: str, sample, k: int = 5, model=None) -> list:
    """The k test photos whose teacher embeddings are nearest the student's embedding of `sample`
    (`model`: a Classifier, by default the pair's shipped student)."""
    found = shipped_test_embeddings(pair)
    embedding = embed((model or classifier(pair)).student, sample[None], normalize=True).numpy()
    hits = nearest_neighbours(embedding, found["teacher"], k)[0]
    return [(picture_file(picture(pair, int(h), "source")), found["class_names"][found["labels"][h]])
            for h in hits]


def _look_up(pair: str, sample, model=None) -> tuple[dict, list, str, dict]:
    """A student's answer for one sample (`model`: a Classifier, by default the pair's shipped
    student): calibrated class probabilities, the nearest test photos, the verdict in words ("6
    (93 %)" or "Not sure — closest: 6 (41 %)"), and the answer as `cmcd classify --json` gives it."""
    model = model or classifier(pair)
    result = model.predict(sample)
    return result["probs"], nearest_photos(pair, sample, model=model), f"### {describe(result)}", result


def look_up_drawing(pair: str, editor_value) -> tuple[dict, list, str, dict]:
    """Try it, sketch pad (a dict with a 'composite' image, or an image): see _look_up."""
    return _look_up(pair, _drawing_sample(pair, editor_value))


def look_up_upload(pair: str, path: str) -> tuple[dict, list, str, dict]:
    """Classify a file of the pair's target modality with the pair's shipped student, and find the
    test photos nearest to it.

    Args:
        pair: the pair whose shipped student reads the file
        path: the file
    Returns:
        the calibrated probability of each class, the five nearest test photos with their classes,
        the answer in words ("6 (93 %)", or "Not sure — closest: 6 (41 %)" when the input looks
        like none of the classes), and the answer as {"label", "confidence", "unsure", "closest",
        "probs"}
    """
    return _look_up(pair, _upload_sample(pair, path))


def measured_inputs(pair: str) -> dict | None:
    """The pair's figures from `cmcd bench inputs` (results/inputs.json), if they were measured
    on the student shipped now."""
    found = (read_results("inputs") or {}).get("pairs", {}).get(pair)
    return found if found and found.get("student_digest") == student_digest(pair) else None


def _real_samples_words(found: dict) -> str:
    real = found.get("real_samples")
    if not real:
        return ""
    return (f" Real inputs ({real['what']}): **{real['correct']}/{real['n']}** read right, "
            f"{sum(real['unsure_items'])} \"not sure\".")


def _real_speakers_words(found: dict) -> str:
    people = found.get("real_speakers")
    if not people:
        return ""
    return (f" Real people it never heard (four recorded speakers, each new to the student scored "
            f"on them): **{people['loso_mean']:.1%}** read right, {people['unsure']:.0%} \"not sure\".")


def student_summary(pair: str) -> str:
    """A few lines on the shipped student: method, how it was chosen, its synthetic test accuracy
    and, measured by `cmcd bench inputs`, its accuracy on real inputs and the junk it catches."""
    meta = classifier(pair).metadata
    accuracy = ZERO_LABEL_HEAD.read(meta["metrics"])
    line = (f"Shipped `{pair}` student: **{meta['method']}** (best on validation), zero-label "
            f"synthetic test accuracy {accuracy:.1%} through the teacher's head, with no target labels.")
    found = measured_inputs(pair)
    if found:
        line += _real_speakers_words(found) + _real_samples_words(found)
        line += f" Inputs that are no class: {found['junk_caught']:.0%} caught (\"not sure\" or refused)."
    return line


def real_inputs_summary() -> str:
    """The About tab's section on real inputs, from `cmcd bench inputs` (results/inputs.json)."""
    report = read_results("inputs")
    heading = "### Real inputs\n"
    if not report:
        return heading + "Not measured yet: `cmcd bench inputs` writes results/inputs.json."
    lines = [heading, "Measured by `cmcd bench inputs` on the students shipped when it ran; every "
             "input goes through the same file reader as yours.", ""]
    for pair, found in report["pairs"].items():
        test = found["synthetic_test"]
        line = (f"- `{pair}`: synthetic test {test['rendered']['accuracy']:.1%} "
                f"({test['as_files']['accuracy']:.1%} read back from files, "
                f"{test['as_files']['unsure']:.0%} of them \"not sure\").")
        line += _real_speakers_words(found) + _real_samples_words(found)
        styles = found.get("drawn_styles")
        if styles:
            mean = sum(row["accuracy"] for row in styles.values()) / len(styles)
            line += f" Digits drawn in {len(styles)} other styles: {mean:.0%} read right."
        lines.append(line + f" Junk caught: {found['junk_caught']:.0%}.")
    return "\n".join(lines)


def examples(pair: str) -> list[str]:
    return sorted(str(path) for path in paths.examples_dir().glob(f"{pair}__*")
                  if path.suffix in (".png", ".npy", ".wav"))


def neutral_examples(pair: str) -> list[tuple[str, str, str | None]]:
    """The pair's examples as (pair, file, preview picture or None) for the Try-it panel: copies
    named PAIR-example-K.ext in a folder of the system's temp dir, since the shipped names
    (PAIR__LABEL__what.ext) give the answer away; sketches need no preview (they are pictures)."""
    import shutil
    import tempfile

    folder = Path(tempfile.gettempdir()) / "cmcd-app-examples"
    folder.mkdir(parents=True, exist_ok=True)
    found, drawn = [], pairs.get_spec(pair).target.try_it.widget == "sketchpad"
    for number, source in enumerate(examples(pair), start=1):
        copy = folder / f"{pair}-example-{number}{Path(source).suffix}"
        if not copy.exists() or copy.read_bytes() != Path(source).read_bytes():  # another version's
            staging = folder / f".{copy.name}.{threading.get_ident()}.tmp"
            shutil.copyfile(source, staging)
            staging.replace(copy)
        found.append((pair, str(copy), None if drawn else preview(pair, source)))
    return found


def preview(pair: str, path) -> str | None:
    """A file of the pair's target modality as the student sees it (a depth map as a picture, a
    recording as its spectrogram), as a picture file; None without a file."""
    from PIL import Image

    if not path:
        return None
    sample = _upload_sample(pair, path)
    pixels = pairs.get_spec(pair).target.to_picture(sample)
    return picture_file(Image.fromarray(pixels).resize((140, 140), Image.NEAREST))


def try_it_panels() -> list[tuple[Modality, list[str]]]:
    """One Try-it panel per target modality that takes a person's input, with its pairs that ship
    a student, in registry order."""
    panels: dict[str, tuple[Modality, list[str]]] = {}
    for spec in pairs.PAIRS.values():
        if spec.target.try_it and has_shipped_student(spec.name):
            panels.setdefault(spec.target.name, (spec.target, []))[1].append(spec.name)
    return list(panels.values())


def warm_up_in_background(pair_names=None) -> threading.Thread:
    """Load the Try-it pairs' students, shipped test items and photos in a daemon thread, so a
    visitor's first classification finds them ready (each is loaded once, however many ask). By
    default the first pair of each panel, the one a panel opens on."""
    pair_names = pair_names or [names[0] for _, names in try_it_panels()]

    def warm():
        for pair in pair_names:
            item_photos(pair)

    thread = threading.Thread(target=warm, daemon=True, name="try-it-warm-up")
    thread.start()
    return thread
