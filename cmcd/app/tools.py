"""The app's tools for assistants (its MCP server) and API clients: each answers one compact JSON
object, not the panels' payloads (galleries, figures, browser-session state).

Gradio names a tool after its function and describes it from the docstring: the text before
`Args:`, one `name: description` line per parameter, one line after `Returns:`. The classify tools
take a file (an MCP client sends a URL or a base64 data URI); `run_distillation` takes numbers and
names only, its loss options included, each described with its range and default.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from cmcd.app import training, tryit
from cmcd.app.shipped import classifier, shipped_test_embeddings
from cmcd.data.inputs import InputError
from cmcd.eval.metrics import nearest_neighbours
from cmcd.modalities import pairs
from cmcd.models.embed import embed
from cmcd.train.config import DistillConfig
from cmcd.train.distill import evaluate_student
from cmcd.train.objectives import METHODS, method_options, option_settings
from cmcd.train.options import FieldInfo, describe

TOP_CLASSES = 3
NEAREST_ITEMS = 5


def classify_answer(pair: str, path: str | None) -> str:
    """The pair's shipped student on one file, as compact JSON: label, confidence, unsure, the top
    classes and the nearest app test items (the Retrieve tab's numbers) by the teacher's embeddings."""
    if not path:
        raise InputError("give a file to classify (a URL or a base64 data URI)")
    reader = classifier(tryit.chosen_pair(pair))
    sample = reader.spec.target.read_file(Path(path))
    result = reader.predict(sample)
    top = sorted(result["probs"].items(), key=lambda item: -item[1])[:TOP_CLASSES]
    found = shipped_test_embeddings(pair)
    embedding = embed(reader.student, sample[None], normalize=True).numpy()
    hits = nearest_neighbours(embedding, found["teacher"], NEAREST_ITEMS)[0]
    similarities = found["teacher"][hits] @ embedding[0]
    nearest = [{"test_item": int(hit), "class": found["class_names"][found["labels"][hit]],
                "similarity": round(float(similarity), 3)}
               for hit, similarity in zip(hits, similarities, strict=True)]
    return json.dumps({"pair": pair, "label": result["label"], "confidence": result["confidence"],
                       "unsure": result["unsure"],
                       "top_classes": [{"class": name, "probability": p} for name, p in top],
                       "nearest_test_items": nearest})


ANSWER = ('{"pair", "label", "confidence", "unsure" (true: the input looks like no class), '
          '"top_classes": [{"class", "probability"}], "nearest_test_items": [{"test_item", "class", '
          '"similarity"}]} as JSON')


def classify_sketch(pair: str, sketch: str) -> str:
    """Classify a sketch (a PNG or JPEG picture of a line drawing, dark on light or light on dark)
    with the pair's shipped student, distilled from a photo teacher without a single sketch label;
    says "not sure" (unsure) for a drawing that looks like no class.

    Args:
        pair: the pair whose student reads it: digits-sketch (digits 0-9) or fashion-sketch (clothing)
        sketch: a PNG or JPEG picture, up to 4096 pixels a side, as a URL or a base64 data URI
    Returns:
        ANSWER
    """
    return classify_answer(pair, sketch)


def classify_depth_map(pair: str, depth_map: str) -> str:
    """Classify a depth map with the pair's shipped student, distilled from a photo teacher
    without a single depth label; says "not sure" (unsure) for a depth map that looks like no class.

    Args:
        pair: the pair whose student reads it: digits-depth (digits 0-9) or fashion-depth (clothing)
        depth_map: a .npy array (H, W) or 8/16-bit PNG (larger: farther; 0: no reading), URL or data URI
    Returns:
        ANSWER
    """
    return classify_answer(pair, depth_map)


def classify_recording(pair: str, recording: str) -> str:
    """Classify a recording of a spoken digit (English, zero to nine) with the pair's shipped
    student, distilled from a photo teacher without a single audio label; says "not sure"
    (unsure) for a sound that is no spoken digit.

    Args:
        pair: the pair whose student listens: digits-audio
        recording: one spoken digit, up to 10 s, WAV, FLAC, OGG, MP3, M4A or WebM, as a URL or data URI
    Returns:
        ANSWER
    """
    return classify_answer(pair, recording)


for _tool in (classify_sketch, classify_depth_map, classify_recording):
    _tool.__doc__ = _tool.__doc__.replace("ANSWER", ANSWER)

# Each Try-it modality's tool, by modality name.
TOOLS = {"sketch": classify_sketch, "depth": classify_depth_map, "audio": classify_recording}


# run_distillation's settings, as the Distill tab's controls bound them: (minimum, maximum, default).
SETTINGS = {
    "epochs": (int, 1, 20, 5, "passes over the unlabeled pairs"),
    "n_pairs": (int, 100, 10_000, 8_000, "how many unlabeled (photo, target) pairs to train on"),
    "batch_size": (int, 64, 512, 256, "pairs per optimiser step"),
    "temperature": (float, 0.05, 1.0, 0.3, "the softmax temperature tau of cmc, crd, cmc+l2 and target-ssl"),
    "seed": (int, 0, 2**32 - 1, 0, "the random seed"),
}
# Every other option of every method, by name (the first method's setting of a shared name).
LOSS_OPTIONS = {name: owners for name, owners in option_settings().items() if name != "temperature"}


def _range_words(info: FieldInfo) -> str:
    limits = info.limits
    if info.kind is bool:
        return "true or false"
    if "choices" in limits:
        return " or ".join(map(str, limits["choices"]))
    words = "an integer" if info.kind is int else "a number"
    if "above" in limits:
        words += f" above {limits['above']}"
    if "minimum" in limits:
        words += f" of at least {limits['minimum']}"
    return words + (f" and at most {limits['maximum']}" if "maximum" in limits else "")


def _shown_default(info: FieldInfo):
    return 0 if info.default is None else info.default


def _option_line(name: str, owners: list[tuple[str, FieldInfo]]) -> str:
    info = owners[0][1]
    methods = ", ".join(method for method, _ in owners)
    none = "; 0: none" if info.optional else ""
    return (f"{name}: for {methods} only (ignored otherwise): {info.help}; {_range_words(info)}"
            f"{none}; default {json.dumps(_shown_default(info))}")


def _distill_docstring() -> str:
    settings = [f"{name}: {words}, {'an integer' if kind is int else 'a number'} from {_number(low)} "
                f"to {_number(high)}; default {_number(default)}"
                for name, (kind, low, high, default, words) in SETTINGS.items()]
    lines = [
        "Distil a small student yourself: a network of the pair's target modality learns from",
        "unlabeled (photo, target) pairs to match a frozen photo teacher, then classifies with zero",
        "target labels; reports its test metrics next to the same student untrained. Takes about a",
        "minute on a CPU with the defaults; fewer epochs and pairs are faster.",
        "",
        "Args:",
        f"    pair: the modality pair: {', '.join(pairs.PAIRS)}; default digits-sketch",
        f"    method: the objective: cmc (contrastive), cmd (the teacher's similarities), l2 "
        f"(positives only), or one of {', '.join(METHODS[3:])}; default cmc",
        *(f"    {line}" for line in settings),
        *(f"    {_option_line(name, owners)}" for name, owners in LOSS_OPTIONS.items()),
        "Returns:",
        '    {"pair", "method", "settings", "device", "wall_s", "train_s", "zero_label_acc": '
        '{"head", "prototype"}, "untrained_zero_label_acc", "few_label_acc": {"1", "5", "10"}, '
        '"retrieval_r1": {"target_to_source", "source_to_target"}, "tv_distance", "tool_s"} as JSON',
    ]
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _whole_or_number(name: str, kind: type, value, low, high):
    """`value` as `kind` within [low, high], or InputError saying what is allowed."""
    noun = "an integer" if kind is int else "a number"
    allowed = f"{name} ({value!r}) must be {noun} from {_number(low)} to {_number(high)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(allowed)
    if kind is int and value != int(value):
        raise InputError(allowed)
    if value < low:
        raise InputError(f"{name} ({value!r}) must be at least {_number(low)}")
    if value > high:
        raise InputError(f"{name} ({value!r}) must be at most {_number(high)}")
    return kind(value)


def tool_config(pair: str, method: str, settings: dict, options: dict) -> DistillConfig:
    """The run's config; a refused setting is one InputError sentence, before anything loads."""
    checked = {name: _whole_or_number(name, kind, settings[name], low, high)
               for name, (kind, low, high, _, _) in SETTINGS.items()}
    if method not in METHODS:
        raise InputError(f"method ({method!r}) must be one of {', '.join(METHODS)}")
    fields = {info.name: info for info in describe(method_options(method))}
    given = {**options, "temperature": checked["temperature"]}
    loss = {name: None if fields[name].optional and value == 0 else value
            for name, value in given.items() if name in fields}
    try:
        return DistillConfig.from_flat(pair=pair, method=method, epochs=checked["epochs"],
                                       n_pairs=checked["n_pairs"], batch_size=checked["batch_size"],
                                       seed=checked["seed"], **loss)
    except ValueError as error:
        raise InputError(str(error)) from None


def _round(tree):
    if isinstance(tree, dict):
        return {key: _round(value) for key, value in tree.items()}
    return round(tree, 4) if isinstance(tree, float) else tree


def distillation_answer(config: DistillConfig, trained, untrained: dict, settings: dict,
                        started: float) -> str:
    """The finished run as compact JSON; `started`: when the call began (perf_counter)."""
    metrics = evaluate_student(trained).metrics
    retrieval = metrics["retrieval"]
    return json.dumps(_round({
        "pair": config.pair, "method": config.method, "settings": settings,
        "device": metrics["device"], "wall_s": metrics["wall_s"], "train_s": metrics["train_s"],
        "zero_label_acc": metrics["zero_label_acc"],
        "untrained_zero_label_acc": untrained["zero_label_acc"],
        "few_label_acc": metrics["few_label_acc"],
        "retrieval_r1": {way: retrieval[way]["r1"] for way in ("target_to_source", "source_to_target")},
        "tv_distance": metrics["tv_distance"], "tool_s": time.perf_counter() - started}))


def distillation_tool(train: Callable[[DistillConfig], Iterator[dict]]) -> Callable[..., str]:
    """The `run_distillation` tool around `train` (the app's training, which borrows a ZeroGPU on
    a Space): a function with one typed parameter per setting and loss option."""
    names = ["pair", "method", *SETTINGS, *LOSS_OPTIONS]

    def run_distillation(*values) -> str:
        given = dict(zip(names, values, strict=True))
        config = tool_config(given["pair"], given["method"], given, given)
        settings = {name: given[name] for name in SETTINGS} | config.loss.to_dict()
        started = time.perf_counter()
        training.prepare_data(config)
        trained = None
        stream = train(config)
        try:
            for event in stream:
                if event["kind"] == "trained":
                    trained = event["trained"]
        finally:
            stream.close()  # stops the training worker if anything went wrong
        untrained = training.untrained_metrics(config.pair, config.seed, config.width, "cpu")
        return distillation_answer(config, trained, untrained, settings, started)

    parameters = [
        inspect.Parameter("pair", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="digits-sketch",
                          annotation=Literal[tuple(pairs.PAIRS)]),
        inspect.Parameter("method", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="cmc",
                          annotation=Literal[tuple(METHODS)]),
        *(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                            annotation=kind) for name, (kind, _, _, default, _) in SETTINGS.items()),
        *(_option_parameter(name, owners[0][1]) for name, owners in LOSS_OPTIONS.items()),
    ]
    run_distillation.__signature__ = inspect.Signature(parameters, return_annotation=str)
    run_distillation.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": str}
    run_distillation.__doc__ = _distill_docstring()
    return run_distillation


def _option_parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    kind = Literal[tuple(info.limits["choices"])] if "choices" in info.limits else info.kind
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                             default=_shown_default(info), annotation=kind)
