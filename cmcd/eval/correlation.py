"""Correlation with a bootstrap confidence interval, within one group of points or pooled over
several groups (strata) without letting differences between the groups make the correlation.

Pooled, each stratum is centred on its own means first (Pearson), or ranked within itself and its
ranks centred (Spearman), so only how x and y move together *inside* each stratum counts; the
bootstrap resamples points within each stratum, or, given clusters (points that are not
independent, such as the seeds of one recipe), clusters and then points within them. Computed
on many resamples at once: one row each.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

KINDS = ("spearman", "pearson")
DRAWS = 2000


def _within(values: np.ndarray, strata: np.ndarray, kind: str) -> np.ndarray:
    """(rows, n) values centred within each stratum, row by row; for Spearman, ranks scaled to
    (0, 1] first."""
    result = np.empty(values.shape)
    for stratum in np.unique(strata):
        columns = strata == stratum
        chosen = values[:, columns]
        if kind == "spearman":
            chosen = rankdata(chosen, axis=1) / chosen.shape[1]
        result[:, columns] = chosen - chosen.mean(axis=1, keepdims=True)
    return result


def _correlations(x: np.ndarray, y: np.ndarray, strata: np.ndarray, kind: str) -> np.ndarray:
    """The stratified correlation of each row of x (rows, n) with the same row of y; NaN where
    either is constant within every stratum."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x, y = _within(x, strata, kind), _within(y, strata, kind)
    scale = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 1e-12, (x * y).sum(axis=1) / scale, np.nan)


def stratified_correlation(x, y, strata, kind: str) -> float:
    """Correlation of x and y inside the strata (one stratum: the plain correlation)."""
    x, y = np.asarray(x, float)[None], np.asarray(y, float)[None]
    return float(_correlations(x, y, np.asarray(strata), kind)[0])


def _resample(strata: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, n) indices: each column drawn with replacement from its own stratum's points."""
    rows = np.empty((draws, len(strata)), dtype=np.int64)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        rows[:, members] = rng.choice(members, size=(draws, len(members)))
    return rows


def _resample_clusters(strata: np.ndarray, clusters: np.ndarray, draws: int,
                       rng: np.random.Generator) -> np.ndarray:
    """(draws, n) indices of a two-stage bootstrap inside each stratum: each cluster's slots take
    a cluster drawn with replacement, then that many of its members drawn with replacement."""
    rows = np.empty((draws, len(strata)), dtype=np.int64)
    for stratum in np.unique(strata):
        in_stratum = strata == stratum
        names = list(dict.fromkeys(clusters[in_stratum]))
        groups = [np.flatnonzero(in_stratum & (clusters == name)) for name in names]
        sizes = np.array([len(g) for g in groups])
        padded = np.array([np.resize(g, sizes.max()) for g in groups])
        for slots in groups:
            chosen = rng.integers(0, len(groups), draws)
            within = (rng.random((draws, len(slots))) * sizes[chosen][:, None]).astype(np.int64)
            rows[:, slots] = padded[chosen[:, None], within]
    return rows


def correlation_ci(x, y, strata=None, kind: str = "spearman", draws: int = DRAWS, seed: int = 0,
                   level: float = 0.95, clusters=None) -> dict:
    """{"r", "ci_low", "ci_high", "n"}: the (stratified) correlation and its percentile bootstrap
    interval; r and the interval are None when x or y is constant within every stratum or there
    are fewer than 4 points. With `clusters` (a label per point, such as its arm), the bootstrap
    resamples clusters and then points within them, instead of points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    strata = np.zeros(len(x)) if strata is None else np.asarray(strata)
    r = stratified_correlation(x, y, strata, kind) if len(x) >= 4 else float("nan")
    if not np.isfinite(r):
        return {"r": None, "ci_low": None, "ci_high": None, "n": len(x)}
    rng = np.random.default_rng(seed)
    rows = (_resample(strata, draws, rng) if clusters is None
            else _resample_clusters(strata, np.asarray(clusters), draws, rng))
    samples = _correlations(x[rows], y[rows], strata, kind)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {"r": round(r, 3), "ci_low": round(float(low), 3), "ci_high": round(float(high), 3),
            "n": len(x)}
