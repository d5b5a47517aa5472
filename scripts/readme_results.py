"""Write the README's Results section from results/ and checkpoints/, so every number in it comes
from a file a named command wrote.

    python scripts/readme_results.py            # rewrite the section in README.md
    python scripts/readme_results.py --print    # print it only

The section sits between the markers <!-- results:begin --> and <!-- results:end -->;
tests/test_packaging.py checks that README.md holds exactly what this script writes.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cmcd.bench import speakers  # noqa: E402
from cmcd.eval import records  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.paths import DATA_VERSION  # noqa: E402

RESULTS, CHECKPOINTS = ROOT / "results", ROOT / "cmcd" / "shipped" / "checkpoints"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
STUDENT_COLUMNS = (records.ZERO_LABEL_HEAD, records.ZERO_LABEL_PROTOTYPE, records.R1_TARGET_TO_SOURCE)
PAIRS = tuple(pairs.PAIRS)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def teachers() -> str:
    lines = ["| teacher | source test accuracy | source val accuracy | photos | data | train s (CPU) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for dataset in ("digits", "fashion"):
        for variant in ("ft", "ssl"):
            meta = _json(CHECKPOINTS / f"teacher-{dataset}-{variant}.json")
            lines.append(f"| {dataset} `{variant}` | {meta['source_test_acc']:.3f} | "
                         f"{meta['source_val_acc']:.3f} | {meta['train_items']:,} | "
                         f"v{meta['config']['data_version']} | {meta['train_seconds']:.0f}"
                         f"{' (fine-tuning alone)' if 'ssl_teacher' in meta else ''} |")
    return "\n".join(lines)


def students() -> str:
    lines = ["| pair | shipped method | epochs, width | validation head accuracy of each candidate | "
             "test zero-label head | test prototype | test R@1 target→source |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for pair in PAIRS:
        meta = _json(CHECKPOINTS / f"student-{pair}.json")
        candidates = ", ".join(f"{name} {score:.3f}" for name, score in meta["candidates"].items())
        tested = " | ".join(f"{metric.read(meta['metrics']):.3f}" for metric in STUDENT_COLUMNS)
        config = meta["config"]
        lines.append(f"| {pair} | {meta['method']} | {config['epochs']}, {config['width']} | {candidates} "
                     f"| {tested} |")
    return "\n".join(lines)


def speed() -> str:
    s = _json(RESULTS / "bench-speed.json")
    return (f"Default `cmcd distill --pair {s['pair']}` ({s['method']}, width {s['width']}, "
            f"{s['epochs']} epochs × {s['n_pairs']:,} pairs, {s['device']}, {s['torch_threads']} "
            f"threads): {s['cli_distill_wall_s']:.1f} s wall in a new process, start-up and "
            f"evaluation included; {s['distill_pairs_per_s']:,.0f} pairs/s against "
            f"{s['pure_train_samples_per_s']:,.0f} samples/s of pure forward+backward on identical "
            f"batches (ratio {s['ratio']:.2f}, both in a warmed-up process).")


def data() -> str:
    d = _json(RESULTS / "bench-data.json")
    warm = max(d["warm_load_s"].values())
    return (f"Cold build of all five pairs from an empty cache: {d['cold_build_total_s']:.1f} s "
            f"on {d['cpu_count']} cores (peak {d['peak_rss_mb']['build']:,.0f} MB); warm load "
            f"of any pair at most {warm:.2f} s.")


def app() -> str:
    a = _json(RESULTS / "bench-app.json")
    latency = "; ".join(f"{pair} p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms"
                        for pair, row in a["classify"].items())
    cold = a.get("cold_start")
    restart = "" if cold is None else (
        f" After a restart with an empty cache (a new Space), the page is served after "
        f"{cold['page_s']:.1f} s and the first spoken digit is answered after "
        f"{cold['first_answer_s']:.1f} s.")
    return (f"`python app.py` serves its page after {a['startup_s']:.1f} s; classify latency of "
            f"the app's handlers on the shipped examples ({a['cpu_count']} cores): {latency}."
            + restart)


def speed_cuda() -> str:
    s = _json(RESULTS / "bench-speed-cuda.json")
    return (f"on the GPU (`cmcd bench speed --device cuda`, {s['device']}, see "
            f"`results/bench-speed-cuda.json`), the same run trains at {s['distill_pairs_per_s']:,.0f} "
            f"pairs/s against {s['pure_train_samples_per_s']:,.0f} samples/s of pure training (ratio "
            f"{s['ratio']:.2f}) and takes {s['cli_distill_wall_s']:.1f} s in a new process.")


def scaling() -> str:
    """The 2-process torchrun run against the same run in one process (README: Scaling out)."""
    two, one = _json(RESULTS / "torchrun-cpu.json"), _json(RESULTS / "single-process-cpu.json")

    def described(m: dict) -> str:
        return (f"zero-label head accuracy {m['zero_label_acc']['head']:.3f} (prototype "
                f"{m['zero_label_acc']['prototype']:.3f}), {m['train_s']:.1f} s of training "
                f"({m['pairs_per_s']:,.0f} pairs/s)")

    return (f"world_size {two['world_size']}, {described(two)}; in one process "
            f"(world_size {one['world_size']}): {described(one)}.")


def benchmark_line(report: dict, name: str) -> str:
    return (f"`{report['command']}`: {len(report['runs'])} runs in {report['wall_s'] / 60:.1f} min on "
            f"{report['device']}")


def tuning_line(tuning: dict, paper: dict) -> str:
    """How the settings were chosen, from results/tuning.json, and whether the paper tables were
    made with them (results/paper.json records the settings it ran with)."""
    chosen = "; ".join(f"{method} {_settings(values)}" for method, values in tuning["chosen"].items())
    finetune = tuning["finetune"]["chosen"]
    budget = tuning["settings"].get("budget", {}).get("multiplier", 1.0)
    earlier = ("" if (paper["settings"].get("chosen"), paper["settings"].get("finetune"))
               == (tuning["chosen"], finetune) else
               " **The paper tables below were made with an earlier sweep's settings** (`settings` in "
               "`results/paper.json`); they stay until `cmcd bench paper` runs again.")
    return (f"Settings chosen on the validation split by `{tuning['command']}` "
            f"({len(tuning['runs'])} runs at x{budget:g} the benchmark's steps in "
            f"{tuning['wall_s'] / 60:.1f} min on {tuning['device']}; "
            f"every method {len(next(iter(tuning['candidates'].values())))} configurations on "
            f"{', '.join(tuning['settings']['pairs'])}, see `results/tuning.json`): {chosen}; "
            f"step-3 fine-tuning {finetune['steps']} steps at lr {finetune['lr']:g}."
            + earlier + stale_data_note(tuning, "tuning"))


def stale_data_note(report: dict, name: str) -> str:
    """A warning when a results file was made on data other than today's renderers give."""
    version = report.get("data_version", "1")
    if version == DATA_VERSION:
        return ""
    return (f" **These runs were made on data version {version}; the renderers now give version "
            f"{DATA_VERSION}** (see `cmcd/paths.py`): `cmcd bench {name}` makes them again.")


def older_sweep_note(paper: dict, tuning: dict) -> str:
    """A warning when the paper benchmark ran with other settings than results/tuning.json's."""
    if paper["settings"].get("chosen") == tuning.get("chosen"):
        return ""
    return (" **Its runs used the settings of an earlier `cmcd bench tuning`** (listed in "
            "`results/paper.json`), not the ones above.")


def _settings(values: dict) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in values.items()) + ")" if values else "(defaults)"


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _family_sentences(rows: list[dict], methods, baselines) -> list[str]:
    from cmcd.bench.paper import verdict_sentence

    sentences = []
    for method in methods:
        for baseline in baselines:
            chosen = [r for r in rows if r["method"] == method and r["baseline"] == baseline]
            if chosen:
                low = min(r["diff_mean"] for r in chosen)
                high = max(r["diff_mean"] for r in chosen)
                sentences.append(f"{verdict_sentence(chosen, method, baseline)} (mean differences "
                                 f"{_points(low)} to {_points(high)} points)")
    return sentences


def claim_one(paper: dict) -> str:
    """Claim 1 in words, counted from the verdicts list (teacher ssl, test accuracy): the paper's
    losses against each baseline, then ours, counted separately."""
    from cmcd.bench.paper import FAMILIES

    rows = [r for r in paper["verdicts"] if r["teacher"] == "ssl"
            and r["metric"] == records.ACCURACY.name]
    parts = []
    for family, methods, baselines in FAMILIES:
        chosen = [r for r in rows if r["family"] == family]
        wins = sum(r["verdict"] == "beats" for r in chosen)
        parts.append(f"{family}: a win in {wins} of {len(chosen)} (pair, method, baseline) cells; "
                     + "; ".join(_family_sentences(chosen, methods, baselines)))
    from cmcd.bench.claim_size import sentence

    size = sentence([r for r in rows if r.get("kind") == "claim-size"])
    return "counted from the verdicts (teacher `ssl`, test accuracy). " + ". ".join(
        part[0].upper() + part[1:] for part in parts) + "." + (" " + size if size else "")


def paper_part(paper: dict, tuning: dict) -> list[str]:
    """The paper benchmark's part of the Results: its tables and generated verdicts."""
    if "verdicts" not in paper:
        return ["`results/paper.json` predates the current benchmark (teacher `ssl` main table, "
                "tuned settings, paired verdicts); run `cmcd bench tuning`, then "
                "`cmcd bench paper`, then this script.", ""]
    from cmcd.bench.paper import markdown

    multiplier = paper["settings"].get("budget", {}).get("multiplier", 1)
    return [f"{benchmark_line(paper, 'paper')}; tables in `results/paper.md`, every run and the "
            "verdicts in `results/paper.json`. Every distillation method trains for the same number "
            f"of steps: x{multiplier:g} a default run's (5 epochs of all pairs, batch 256, width 16). "
            "Retrieval R@1 is instance matching among 1,000 test items for sketch and depth, class "
            "matching for audio." + stale_data_note(paper, "paper") + older_sweep_note(paper, tuning), "",
            markdown(paper).split("\n", 2)[2].strip(), "",
            "![Zero- and few-label accuracy, probes](results/figures/paper-few-label.png)", "",
            "![Zero- and few-label accuracy, fine-tuned](results/figures/paper-few-label-ft.png)", "",
            "**Verdict, claim 1** (CMCD beats existing label-free distillation by 2–3 points): "
            + claim_one(paper), ""]


def _best_per_budget(rows: list[dict], pair: str) -> str:
    """The distillation method with the best mean validation accuracy at each multiplier."""
    from cmcd.bench.budget import best_on_validation

    return ", ".join(f"x{m:g} {best_on_validation(rows, pair, m)}"
                     for m in sorted({r["multiplier"] for r in rows if r["pair"] == pair}))


def _longest_doubling(rows: list[dict]) -> str:
    """How often the last doubling of the budget raised or lowered validation accuracy."""
    top, below = sorted({r["multiplier"] for r in rows})[-2:][::-1]
    at = {(r["pair"], r["method"], r["multiplier"]): r["validation"] for r in rows}
    changes = [at[(pair, method, top)] - at[(pair, method, below)]
               for pair, method, multiplier in at if multiplier == below and (pair, method, top) in at]
    lower, higher = sum(change < 0 for change in changes), sum(change > 0 for change in changes)
    same = len(changes) - lower - higher
    return (f"Doubling x{below:g} to x{top:g} lowered mean validation accuracy in {lower} of "
            f"{len(changes)} (pair, method) cells and raised it in {higher}"
            + (f" (unchanged in {same})." if same else "."))


def _paper_budget_note(chosen: float) -> str:
    """Whether the paper tables above were made at the chosen budget (from their settings)."""
    paper = _json(RESULTS / "paper.json") if (RESULTS / "paper.json").exists() else {}
    made_at = paper.get("settings", {}).get("budget", {}).get("multiplier", 1.0)
    if made_at == chosen:
        return ""
    return (f"; the paper tables above were made at x{made_at:g} and stay until `cmcd bench tuning` "
            "and `cmcd bench paper` run again")


def budget_part() -> list[str]:
    """The budget study's part of the Results, from results/budget.json: finished, its choice;
    unfinished, the pairs it has completed, and no choice."""
    from cmcd.bench import budget

    title = "### How long must students train? (`cmcd bench budget`)"
    path = RESULTS / "budget.json"
    if not path.exists():
        return [title, "", "`cmcd bench budget` has not run: the main table trains for x1 (a default "
                "run's steps).", ""]
    report = _json(path)
    finished = "choice" in report
    pairs_done = report["settings"]["pairs"] if finished else budget.complete_pairs(report)
    rows = [r for r in budget.curves(report["runs"]) if r["pair"] in pairs_done]
    methods = ", ".join(f"`{m}`" for m in report["settings"]["methods"])
    lines = [title, "", f"{benchmark_line(report, 'budget')}: {methods} at "
             + ", ".join(f"x{m:g}" for m in report["settings"]["multipliers"])
             + " the paper benchmark's steps (supervised: x its own budget), "
             f"{len(report['settings']['seeds'])} seeds per cell; mean accuracy, validation / test."]
    if finished:
        choice = report["choice"]
        lines[-1] += (f" **Chosen on validation: x{choice['multiplier']:g}** ({choice['reason']}); "
                      "`cmcd bench tuning` and `cmcd bench paper` train for that many steps"
                      + _paper_budget_note(choice["multiplier"]) + ".")
    else:
        lines[-1] += (f" **Unfinished: {len(report['runs'])} of {budget.planned_count(report['settings'])} "
                      "runs**, so no budget is chosen yet and tuning and paper still train for x1; below, "
                      "the pairs with every run done (" + ", ".join(pairs_done) + ").")
    if not rows:
        return [*lines, ""]
    lines += ["", *budget.curve_table(rows), "", _longest_doubling(rows) + " Best distillation method on "
              "validation at each budget: " + "; ".join(f"{pair}: {_best_per_budget(rows, pair)}"
                                                      for pair in pairs_done) + ".", ""]
    if finished:
        lines += ["![Accuracy against training budget](results/figures/budget-validation.png)", ""]
    return lines


def theory_part() -> list[str]:
    """The theory study's part of the Results: tables and every verdict sentence computed from
    results/theory.json (by cmcd.bench.theory and cmcd.viz.theory)."""
    from cmcd.bench.theory import settings_note, tables
    from cmcd.viz.theory import is_current, verdict_lines

    theory = _json(RESULTS / "theory.json")
    title = ("### Does target error grow with the TV distance, and does the bound hold? "
             "(`cmcd bench theory`)")
    if not is_current(theory):
        return [title, "", f"`results/theory.json` ({benchmark_line(theory, 'theory')}) predates "
                "the calibrated TV estimate; `cmcd bench theory` writes this part again."]
    arms = ", ".join(f"`{arm['name']}`" for arm in theory["settings"]["arms"])
    return [
        title, "",
        f"{benchmark_line(theory, 'theory')}; teacher `{theory['settings']['teacher']}`; students "
        f"{arms} on every pair and seed (gap: the pair's default unless named; a gap arm at a pair's "
        "default gap is that pair's default student and runs once). "
        f"{settings_note(theory['settings'])} TV is estimated "
        "on the teacher's and the student's embeddings projected on their top 2 (and 16) pooled "
        "principal directions, by a nearest-neighbour two-sample test calibrated on samples of "
        "known TV (`cmcd/eval/divergence.py`, `cmcd/eval/tv_calibration.py`).", "",
        tables(theory), "",
        "![Error against TV](results/figures/theory.png)", "",
        "![The TV estimator on samples of known TV](results/figures/theory-calibration.png)", "",
        "**Verdict, claim 2** (target error grows with the TV distance between source and target "
        "latent distributions; err_target ≤ err_source + TV): " + " ".join(verdict_lines(theory)),
    ]


def _best_cmcd(report: dict, pair: str) -> tuple[str, float]:
    """The CMCD method with the best mean zero-label mIoU on `pair`, and that mean."""
    from cmcd.bench.segmentation import CMCD, ZERO_LABEL_MIOU, main_teacher

    means = {}
    teacher = main_teacher(report["runs"])
    for method in CMCD:
        values = [ZERO_LABEL_MIOU.read(r["metrics"]) for r in report["runs"]
                  if r["config"]["pair"] == pair and r["config"]["method"] == method
                  and r["config"].get("teacher", "ft") == teacher]
        if values:
            means[method] = sum(values) / len(values)
    best = max(means, key=means.get)
    return best, means[best]


def segmentation_sentences(report: dict) -> list[str]:
    """Per pair: the best CMCD method's zero-label mIoU against the teacher's on photos, and the
    verdicts against dense L2 (the main setting's teacher), counted from the JSON."""
    from cmcd.bench.segmentation import main_teacher

    sentences = []
    for pair, teacher in report["teacher"].items():
        method, miou = _best_cmcd(report, pair)
        rows = [r for r in report["verdicts"] if r["pair"] == pair
                and r.get("teacher", "ft") == main_teacher(report["runs"])]
        words = "; ".join(f"{r['method']} {r['verdict']} l2 on {r['metric']} ({_points(r['diff_mean'])} "
                          f"points, p_Holm {r['p_holm']:.2f})" for r in rows)
        gap = teacher["miou"] - miou
        sentences.append(f"{pair}: the best CMCD student ({method}) reaches a zero-label mIoU of "
                         f"{miou:.3f}, {abs(gap):.3f} {'below' if gap >= 0 else 'above'} the dense "
                         f"teacher on the photos ({teacher['miou']:.3f}); {words}.")
    return sentences


def segmentation_part() -> list[str]:
    """The segmentation benchmark's part of the Results, from results/segmentation.json."""
    path = RESULTS / "segmentation.json"
    title = "### Segmentation: dense CMCD on the depth pairs (`cmcd bench segmentation`)"
    if not path.exists():
        return [title, "", "No `results/segmentation.json` yet: `cmcd bench segmentation` writes it."]
    from cmcd.bench.segmentation import markdown, settings_note

    report = _json(path)
    return [title, "",
            f"{benchmark_line(report, 'segmentation')}; {settings_note(report)}. Few-label columns "
            "fine-tune the whole student on k labelled maps per class."
            + stale_data_note(report, "segmentation"), "",
            markdown(report).split("\n", 2)[2].strip(), "",
            "**Verdict, segmentation:** " + " ".join(segmentation_sentences(report))]


def _real_words(entry: dict) -> str:
    real = entry.get("real_samples")
    return f"{real['correct']}/{real['n']} ({sum(real['unsure_items'])} not sure)" if real else "–"


def _style_words(entry: dict) -> str:
    styles = entry.get("drawn_styles")
    if not styles:
        return "–"
    accuracy = sum(row["accuracy"] for row in styles.values()) / len(styles)
    unsure = sum(row["unsure"] for row in styles.values()) / len(styles)
    return f"{accuracy:.3f} ({unsure:.0%} not sure)"


def _calibration_words(entry: dict) -> tuple[str, str]:
    """(validation junk flagged by each score, the kept one in bold; NLL before and after T)."""
    calibration = entry["calibration"]
    if not calibration:
        return "–", "–"
    if "fitted_on" in calibration:  # fitted on real speakers its folds never heard (cmcd.eval.people)
        return (f"**{calibration['score']}**, cut fitted on held-out real speakers",
                f"T = {calibration['temperature']:.2f}, fitted on held-out real speakers")
    scores = ", ".join(f"**{kind} {value:.0%}**" if kind == calibration["score"] else f"{kind} {value:.0%}"
                       for kind, value in calibration["validation_junk_flagged"].items())
    nll = calibration["validation_nll"]
    return scores, f"{nll['before']:.3f} → {nll['after']:.3f} (T = {calibration['temperature']:.2f})"


def real_inputs() -> str:
    """The shipped students on inputs as people give them (`cmcd bench inputs`)."""
    lines = ["| pair | synthetic test | same, read from files | not sure (test files) | real inputs "
             "| digits drawn in other styles | junk caught | not-sure score: validation junk flagged "
             "| NLL on validation, T = 1 → T |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    measured = _json(RESULTS / "inputs.json")["pairs"]
    for pair, entry in ((pair, measured[pair]) for pair in PAIRS if pair in measured):
        test, files = entry["synthetic_test"]["rendered"], entry["synthetic_test"]["as_files"]
        scores, nll = _calibration_words(entry)
        lines.append(f"| {pair} | {test['accuracy']:.3f} | {files['accuracy']:.3f} | {files['unsure']:.1%} "
                     f"| {_real_words(entry)} | {_style_words(entry)} | {entry['junk_caught']:.0%} "
                     f"| {scores} | {nll} |")
    return "\n".join(lines)


def real_speakers() -> list[str]:
    """Leave-one-speaker-out on the shipped FSDD speakers, as recorded at calibration."""
    lines = []
    for pair, entry in _json(RESULTS / "inputs.json")["pairs"].items():
        people = entry.get("real_speakers")
        if not people:
            continue
        kinds = people["junk_flagged_held_out_kinds"]
        junk = ", ".join(f"{kind} {value:.0%}" for kind, value in kinds.items())
        lines += [f"Real speakers never heard ({pair}: each of the four shipped FSDD speakers held out of "
                  f"training in turn, scored on all 500 of their recordings; \"not sure\" and T fitted on "
                  f"the other folds alone): mean accuracy **{people['loso_mean']:.3f}** ("
                  + ", ".join(f"{who} {value:.3f}" for who, value in people["loso_accuracy"].items())
                  + f"), {people['unsure']:.1%} \"not sure\", ECE {people['ece']['before']:.3f} → "
                  f"{people['ece']['after']:.3f}; junk of kinds left out of the detector's fit flagged: "
                  f"{junk}.", ""]
    return lines


def speaker_study() -> list[str]:
    """How many real recordings go into the spoken digits' training pairs: the leave-one-speaker-out
    study (scripts/real_speakers.py) at the benchmark's length, where the share is chosen, then at
    longer lengths (results/speakers-eEPOCHS/), one of them the shipped student's (does training
    longer help the real speakers?)."""
    lines = []
    longer = sorted(RESULTS.glob("speakers-e*/speakers.json"),
                    key=lambda path: _json(path)["settings"]["epochs"])
    studies = [(RESULTS / "speakers.json", "at the benchmark's length", True)] + [
        (path, _length_against_shipped(_json(path)["settings"]), False) for path in longer]
    for path, what, chooses in studies:
        if not path.exists():
            continue
        study = _json(path)
        settings, choice = study["settings"], study.get("choice")
        seeds = sorted({run["seed"] for run in study["runs"]})
        held_out = sorted({who for row in study["summary"].values() for who in row["loso"]})
        only = ("" if len(held_out) == len(speakers.REAL_SPEAKERS) else
                f", only {', '.join(held_out)} held out, so not comparable with a mean over all four")
        shares = "; ".join(f"{share} %: **{row['loso_mean']:.3f}** (" + ", ".join(
            f"{who} {value:.3f}" for who, value in row["loso"].items())
            + f"; synthetic validation voices {row['synthetic_validation']:.3f})"
            for share, row in sorted(study["summary"].items(), key=lambda item: int(item[0])))
        chose = f" Chosen: **{choice['share']} %** ({choice['rule']})." if choice and chooses else ""
        stale = ("" if settings == speakers.study_settings(settings["epochs"], settings["width"]) else
                 " **These runs were made with another teacher or recipe than today's**: "
                 f"`python scripts/real_speakers.py --shares {' '.join(sorted(study['summary'], key=int))} "
                 f"--seeds {' '.join(map(str, seeds))} --epochs {settings['epochs']} "
                 f"--width {settings['width']}` makes them again.")
        lines += [f"Real recordings in the spoken digits' training pairs, {what} "
                  f"({settings['epochs']} epochs, width {settings['width']}, "
                  f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}{only}; "
                  f"`python scripts/real_speakers.py`, `{path.relative_to(ROOT)}`), held-out speaker "
                  f"accuracy by share of real voices: {shares}.{chose}{stale}", ""]
    return lines


def _length_against_shipped(settings: dict) -> str:
    shipped = _json(CHECKPOINTS / f"student-{speakers.PAIR}.json")["config"]
    same = (settings["epochs"], settings["width"]) == (shipped["epochs"], shipped["width"])
    return "at the shipped student's length" if same else "at another length than the shipped student's"


def drawn_styles() -> str:
    report = _json(RESULTS / "inputs.json")
    return "; ".join(f"{pair}: " + ", ".join(f"{style} {row['accuracy']:.2f}" for style, row in
                                            entry["drawn_styles"].items())
                     + _peoples_ways_words(entry)
                     for pair, entry in report["pairs"].items() if "drawn_styles" in entry)


def _peoples_ways_words(entry: dict) -> str:
    ways = entry.get("peoples_ways")
    if ways is None:
        return ""
    return (f"; people's ways of writing ({', '.join(ways['styles'])} together) {ways['accuracy']:.2f}, "
            f"{ways['unsure']:.0%} not sure")


def _ingredient_words(rows: list[dict], pair: str, measure: str, verdict: str) -> str:
    found = [row["left_out"] for row in rows
             if row["pair"] == pair and row["measure"] == measure and row["verdict"] == verdict]
    return ", ".join("all of them together" if name == "all" else name for name in found)


def ingredient_sentences(report: dict) -> list[str]:
    """Per pair and measure, the ingredients whose removal made a clear difference."""
    rows, sentences = report["contributions"], []
    for pair in report["settings"]["pairs"]:
        for measure in ("validation", "drawn_styles"):
            if not any(r["pair"] == pair and r["measure"] == measure for r in rows):
                continue
            where = "on validation items" if measure == "validation" else "on digits drawn in other styles"
            found = [(word, _ingredient_words(rows, pair, measure, verdict)) for word, verdict in
                     (("helps", "beats"), ("hurts", "loses to"), ("no clear effect", "ties"))]
            sentences.append(f"{pair}, {where}: "
                             + "; ".join(f"{word}: {names}" for word, names in found if names) + ".")
    return sentences


def ingredients_part() -> list[str]:
    from cmcd.bench.ingredients import markdown

    report = _json(RESULTS / "ingredients.json")
    first = report["runs"][0]["config"]
    return ["#### What each ingredient of the people-like data adds (`cmcd bench ingredients`)", "",
            f"{benchmark_line(report, 'ingredients')}. Each variant leaves one ingredient out of the "
            "training pairs only; every run is scored on the full recipe's validation split. Each pair's "
            "shipped method, teacher and augmentation ("
            + ", ".join(f"{pair}: {r['method']}" for pair, r in report["recipes"].items())
            + f") at benchmark length ({first['epochs']} epochs, width {first['width']}); mean ± "
            "standard deviation over "
            f"{len(report['settings']['seeds'])} seeds."
            + stale_data_note(report, "ingredients"), "",
            markdown(report).split("\n", 2)[2].strip(), "",
            "**Verdict, ingredients:** " + " ".join(ingredient_sentences(report))]


def data_versions_part() -> list[str]:
    from data_versions import table  # scripts/, this script's folder

    report = _json(RESULTS / "data_versions.json")
    return ["#### Against the students of data version 1 (`python scripts/data_versions.py`)", "",
            "The test split changed with the data, so each shipped student, of data version 1 (commit "
            f"{report['old_commit']}) and of today, is scored on both versions' test splits "
            f"({report['measure']}; `results/data_versions.json`). Version 1's sketches were "
            "not cropped and redrawn the way every input to today's sketch students is (the sketch "
            "pad, uploaded files and version 2's renders all go through that reader), so each sketch "
            "pair also has a row with version 1's test sketches read as the app reads a drawing:",
            "", table(report["rows"]), "",
            "**Verdict, data versions:** " + " ".join(data_version_sentence(r) for r in report["rows"])]


def data_version_sentence(row: dict) -> str:
    if row["ci_low"] > 0:
        word = f"scores higher than the data-v1 student ({_points(row['difference'])} points)"
    elif row["ci_high"] < 0:
        word = f"scores lower than the data-v1 student ({_points(row['difference'])} points)"
    else:
        word = "is level with the data-v1 student (the interval covers 0)"
    return f"{row['pair']}, {row['test_set']}: today's student {word}."


def section() -> str:
    paper = _json(RESULTS / "paper.json")
    tuning = _json(RESULTS / "tuning.json")
    return "\n".join([
        BEGIN,
        "## Results",
        "",
        "Test split throughout. " + tuning_line(tuning, paper) + " Every number below is written by "
        "the command named next to it.",
        "",
        "**Teachers** (`cmcd pretrain`, see `cmcd/shipped/checkpoints/README.md`; accuracy of the "
        "linear head on held-out source photos):",
        "",
        teachers(),
        "",
        "### Does CMCD beat label-free distillation? (`cmcd bench paper`)",
        "",
        *paper_part(paper, tuning),
        *budget_part(),
        *theory_part(),
        "",
        *segmentation_part(),
        "",
        "### Shipped students, speed, data, app",
        "",
        "**Shipped students** (`python scripts/ship_students.py --pairs PAIR --epochs E --width W`, "
        "with each pair's epochs and width below; the CMCD variant with the best validation score "
        "ships as `cmcd/shipped/checkpoints/student-PAIR`):",
        "",
        students(),
        "",
        f"**Speed** (`cmcd bench speed --json > results/bench-speed.json`): {speed()} And "
        + speed_cuda(),
        "",
        f"**Data** (`cmcd bench data --json > results/bench-data.json`): {data()}",
        "",
        f"**App** (`cmcd bench app --json > results/bench-app.json`): {app()}",
        "",
        "**Scaling out** on this 2-core CPU (`torchrun --standalone --nproc_per_node 2 -m cmcd distill "
        "--pair digits-sketch --method cmc --device cpu --epochs 3 --json > results/torchrun-cpu.json`, "
        "and the same `cmcd distill` without torchrun `> results/single-process-cpu.json`): "
        + scaling(),
        "",
        "### Real people's input (`cmcd bench inputs`)",
        "",
        "The shipped students on inputs as people give them, every one through the same file "
        "reader as a visitor's (`results/inputs.json`). Real inputs: Asterisk's \"Allison\" saying "
        "the digits (Debian `asterisk-core-sounds-en-wav`), a check only, never used for a choice. "
        "\"Not sure\" is calibrated on the validation split (`python scripts/ship_students.py "
        "--calibrate-only`, see `cmcd/eval/confidence.py`): its threshold flags 5 % of validation "
        "items, and the score that flags the most generated junk there is kept (the detector "
        "counted on junk kinds left out of its fit). Junk caught: junk drawn with another seed, "
        "flagged \"not sure\" or refused by the reader (blank, silent, no readings); some kinds "
        "are never calibrated on (`JunkKinds.held_out`: on the sketch pad, a circle with a cross, a "
        "star and a smiley), so their figure is what \"not sure\" does on junk it never saw. The "
        "spoken digits' temperature and cut are fitted on real speakers instead "
        "(`cmcd/eval/people.py`: leave-one-speaker-out folds, see \"Real people's recordings\" below).",
        "",
        real_inputs(),
        "",
        *speaker_study(),
        *real_speakers(),
        f"Digits drawn in other styles, accuracy: {drawn_styles()}.",
        "",
        *ingredients_part(),
        "",
        *data_versions_part(),
        END,
    ])


def main() -> None:
    text = section()
    if "--print" in sys.argv:
        print(text)
        return
    readme = (ROOT / "README.md").read_text()
    if BEGIN in readme:
        head, rest = readme.split(BEGIN, 1)
        readme = head + text + rest.split(END, 1)[1]
    else:
        readme = readme.replace("\n## The data\n", f"\n{text}\n\n## The data\n", 1)
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
