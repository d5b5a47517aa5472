"""`cmcd bench ingredients`: what each people-like ingredient of the training data adds, measured
on validation.

The pairs whose renderers model real people's input have ingredients that can be left out
(`PairSpec.ingredients`): the sketch pairs' pens (fine pen to fat marker), hand (slant, aspect,
tilt; digits only) and coarsening (digits drawn small), and the spoken digits' recorded voices
(flite and festival next to espeak-ng), their speaker warps and the recording chain (rooms, noise,
microphones, telephone). For every such pair, a student is distilled on the full recipe, on each
variant that leaves one ingredient out of its *training pairs* (`PAIR-without-INGREDIENT`,
cmcd.modalities.pairs) and on the variant that leaves them all out, over seeds. Every run has the pair's
shipped method, teacher and augmentation at the benchmark's length (a default run's 5 epochs,
width 16, far cheaper than the shipped students' training), and is scored on the full recipe's
validation split (the test split is never read):
- zero-label head accuracy on the validation items (unseen speakers, for the spoken digits);
- checks on real-looking input: digits drawn in other styles (cmcd.modalities.sketch.drawn_styles, from
  validation items) through the sketch pad's reader, and Allison's ten recorded digits. The
  Allison figure is 10 clips: a check, never a verdict.
An ingredient's contribution is full − without, seed by seed, with a paired t test; the p values of
every cell of the table are Holm-corrected together (cmcd.eval.stats). What the calibration adds
("not sure", temperature) is measured by `cmcd bench inputs` on validation. Writes
OUT/ingredients.json and OUT/ingredients.md.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch

from cmcd.bench import runner as bench_runs
from cmcd.eval import stats
from cmcd.eval.classify import real_samples_accuracy, student_stem
from cmcd.eval.metrics import zero_label_accuracy
from cmcd.eval.results import mean_std
from cmcd.modalities import pairs, read_back
from cmcd.modalities.sketch import drawn_styles
from cmcd.models.checkpoints import read_metadata
from cmcd.models.embed import embed
from cmcd.train.config import DistillConfig
from cmcd.train.distill import validation_run

NAME = "ingredients"
FULL_RECIPE = "full recipe"
ALL_LEFT_OUT = "all"
STYLE_ITEMS = 100  # validation items drawn in each style, 10 per class
STYLE_SEED = 3  # `cmcd bench inputs` draws test items with seed 2


@dataclass(frozen=True)
class Plan:
    pairs: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int | None = None  # None: a default run's (5 epochs over all pairs)
    single: bool = True  # variants leaving out one ingredient each
    together: bool = True  # the variant leaving out all of them


FULL = Plan(pairs=("digits-sketch", "fashion-sketch", "digits-audio"), seeds=(0, 1, 2, 3, 4))
# CI: the pipeline and the file format on tiny runs; its numbers mean nothing.
QUICK = Plan(pairs=("digits-sketch",), seeds=(0, 1), steps=3, single=False)


def variants(plan: Plan, pair: str) -> list[str]:
    """The pair and its variants: each ingredient left out alone, then all of them together."""
    ingredients = pairs.get_spec(pair).ingredients
    left_out = [(name,) for name in ingredients] if plan.single else []
    if plan.together and len(ingredients) > 1:
        left_out.append(ingredients)
    return [pair] + [f"{pair}{pairs.WITHOUT}{'+'.join(names)}" for names in left_out]


@functools.cache
def shipped_recipe(pair: str) -> dict:
    """The method, teacher and augmentation of the pair's shipped student."""
    metadata = read_metadata(student_stem(pair).with_suffix(".json"))
    config = metadata.get("config", {})
    return {"method": metadata["method"], "teacher": metadata.get("teacher", config.get("teacher", "ft")),
            "augment": bool(config.get("augment", False))}


def planned_runs(plan: Plan) -> list[tuple[str, DistillConfig]]:
    return [(NAME, DistillConfig(pair=variant, seed=seed, steps=plan.steps, **shipped_recipe(pair)))
            for pair in plan.pairs for variant in variants(plan, pair) for seed in plan.seeds]


# --- what each run measures ---------------------------------------------------------------------

@functools.cache
def _validation_drawings(pair: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
    """Validation digits drawn in each of drawn_styles.STYLES, read as the sketch pad reads them."""
    spec = pairs.get_spec(pair)
    if spec.dataset != "digits" or spec.target.read_drawing is None:
        return None
    source = pairs.source_images(spec.dataset)
    rows = read_back.spread_rows(spec, "val", STYLE_ITEMS)
    labels = torch.from_numpy(source.labels[rows]).long()
    read = drawn_styles.read_in_every_style(spec.target.read_drawing_of, source.images[rows],
                                            source.labels[rows], STYLE_SEED)
    return {style: (samples, labels) for style, samples in read.items()}


def real_input_checks(student: torch.nn.Module, head: torch.nn.Linear, spec: pairs.PairSpec) -> dict:
    """Zero-label head accuracy on validation digits drawn in other styles (mean over the styles)
    and on the modality's real recordings, where the pair has them."""
    found = {}
    drawings = _validation_drawings(spec.base or spec.name)
    if drawings is not None:
        per_style = {style: zero_label_accuracy(embed(student, samples), labels, head)["head"]
                     for style, (samples, labels) in drawings.items()}
        found["drawn_styles"] = round(sum(per_style.values()) / len(per_style), 4)
    real = real_samples_accuracy(student, head, spec.target)
    if real is not None:
        found["real_samples"] = real["head"]
    return found


def ingredients_job(study: str, config: dict) -> dict:
    return validation_run(DistillConfig.from_dict(config), checks=real_input_checks)


INGREDIENT_RUNS = bench_runs.RunKind(ingredients_job, bench_runs.prepare, bench_runs.DISTILLATION.result)


# --- summary ----------------------------------------------------------------------------------------

MEASURES = {"validation": "validation accuracy", "drawn_styles": "drawn in other styles",
            "real_samples": "Allison's 10 digits"}


def _measure(run: dict, measure: str) -> float | None:
    metrics = run["metrics"]
    if measure == "validation":
        return metrics["validation"]["head"]
    return metrics.get("checks", {}).get(measure)


def _by_seed(runs: list[dict], variant: str, measure: str) -> dict[int, float]:
    found = {r["config"]["seed"]: _measure(r, measure) for r in runs if r["config"]["pair"] == variant}
    return {seed: value for seed, value in found.items() if value is not None}


def left_out(variant: str) -> str:
    """The arm's name in tables: "full recipe", an ingredient, or "all"."""
    names = pairs.get_spec(variant).render_options.get("without", ())
    if not names:
        return FULL_RECIPE
    return ALL_LEFT_OUT if len(names) > 1 else names[0]


def arms(runs: list[dict], plan: Plan) -> list[dict]:
    """Per pair and variant: mean and standard deviation of each measure over seeds."""
    rows = []
    for pair in plan.pairs:
        for variant in variants(plan, pair):
            row = {"pair": pair, "variant": variant, "left_out": left_out(variant)}
            for measure in MEASURES:
                values = list(_by_seed(runs, variant, measure).values())
                if values:
                    mean, std = mean_std(values)
                    row[measure] = {"mean": round(mean, 4), "std": round(std, 4), "n": len(values)}
            rows.append(row)
    return rows


def contributions(runs: list[dict], plan: Plan) -> list[dict]:
    """full − without for every variant and verdict measure (validation accuracy, and drawn
    styles where measured), paired by seed, Holm-corrected across the whole table."""
    cells = []
    for pair in plan.pairs:
        for variant in variants(plan, pair)[1:]:
            for measure in ("validation", "drawn_styles"):
                full, without = _by_seed(runs, pair, measure), _by_seed(runs, variant, measure)
                differences = stats.paired_differences(full, without)
                if differences:
                    cells.append(({"pair": pair, "left_out": left_out(variant), "measure": measure},
                                  differences))
    return stats.family_verdicts(cells) if cells else []


# --- report -----------------------------------------------------------------------------------------

def _cell(arm: dict, measure: str) -> str:
    found = arm.get(measure)
    return "–" if found is None else f"{found['mean']:.3f} ± {found['std']:.3f}"


def arms_table(rows: list[dict]) -> str:
    lines = ["| pair | left out of training | " + " | ".join(MEASURES.values()) + " |",
             "| --- | --- |" + " --- |" * len(MEASURES)]
    for row in rows:
        lines.append(f"| {row['pair']} | {row['left_out']} | "
                     + " | ".join(_cell(row, measure) for measure in MEASURES) + " |")
    return "\n".join(lines)


def contribution_table(rows: list[dict]) -> str:
    lines = ["| pair | ingredient | measure | full − without | interval | p (Holm) | seeds | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        interval = ("unbounded" if row["ci_low"] is None
                    else f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]")
        word = {"beats": "helps", "loses to": "hurts", "ties": "no clear effect"}[row["verdict"]]
        lines.append(f"| {row['pair']} | {row['left_out']} | {MEASURES[row['measure']]} | "
                     f"{row['diff_mean']:+.3f} | {interval} | {row['p_holm']:.3f} | {row['n']} | {word} |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    runs, plan = report["runs"], Plan(**_plan_fields(report["settings"]))
    recipes = ", ".join(f"{pair}: {r['method']}, teacher {r['teacher']}"
                        f"{', augmented' if r['augment'] else ''}"
                        for pair, r in report["recipes"].items())
    return "\n".join([
        f"Device: {report['device']}; {len(runs)} runs in {report['wall_s'] / 60:.1f} min "
        f"({report.get('workers', 1)} worker processes); mean ± standard deviation over "
        f"{len(plan.seeds)} seeds; validation split (the test split is never read). Each pair's "
        f"shipped recipe ({recipes}) at benchmark length.", "",
        arms_table(report["arms"]), "",
        "What each ingredient adds: full recipe − recipe without it, paired by seed (paired t "
        f"tests, Holm-corrected across the {len(report['contributions'])} cells; \"helps\" or "
        "\"hurts\" only where the corrected interval excludes 0). \"all\" leaves every ingredient "
        "of the pair out at once.", "",
        contribution_table(report["contributions"]), ""])


def _plan_fields(settings: dict) -> dict:
    fields = {field.name for field in dataclasses.fields(Plan)}
    return {key: tuple(value) if isinstance(value, list) else value
            for key, value in settings.items() if key in fields}


def run(out: str = "results", quick: bool = False, seeds: int | None = None, workers: int = 1,
        resume: bool = False, report_only: bool = False, command: str = "",
        device: str = "auto") -> dict:
    plan = bench_runs.choose_plan(FULL, QUICK, quick, seeds)
    recipes = {pair: shipped_recipe(pair) for pair in plan.pairs}
    report = bench_runs.load_or_execute(
        NAME, plan, planned_runs, out, quick=quick, workers=workers, resume=resume,
        report_only=report_only, command=command, device=device, kind=INGREDIENT_RUNS,
        settings={**dataclasses.asdict(plan), "style_items": STYLE_ITEMS, "style_seed": STYLE_SEED})
    plan = Plan(**_plan_fields(report["settings"]))
    report |= {"recipes": recipes, "arms": arms(report["runs"], plan),
               "contributions": contributions(report["runs"], plan)}
    return bench_runs.write_json_and_markdown(report, out, NAME, markdown(report))


def format_report(report: dict) -> str:
    return markdown(report) + "\nwrote " + ", ".join(report["written"])
