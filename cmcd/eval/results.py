"""Benchmark results read back: a results file, its runs of one study and pair, mean ± std, and
runs grouped by their settings. The app and the benchmark reports both read results this way."""

from __future__ import annotations

import json
import math
import statistics

from cmcd import paths
from cmcd.eval.records import RunRecord


def read_results(name: str) -> dict | None:
    """results/NAME.json (see cmcd.paths.results_dir), or None before that benchmark ran."""
    path = paths.results_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def runs_of(report: dict, study: str, pair: str) -> list[RunRecord]:
    return [RunRecord.from_json(run) for run in report["runs"]
            if run["study"] == study and run["config"]["pair"] == pair]


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def group(rows: list[dict], *fields: str) -> dict[tuple, list[dict]]:
    """Runs (by their config) or flat rows grouped by fields such as 'pair', 'method', in
    first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        values = row.get("config", row)
        groups.setdefault(tuple(values[f] for f in fields), []).append(row)
    return groups
