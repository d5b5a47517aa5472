"""Samples of known TV distance, and how a TV estimator does on them.

The samples have the size and dimension the estimator meets on real embeddings (1,000 fit and
1,000 held-out points a side, 128 coordinates), with the variance, as there, in a few directions:
two directions carry the structure, the other 126 hold small noise, the same in A and B, which
adds nothing to the TV. Two families:

- mixtures: A from P; B from P, or from Q with probability a, so TV(A, B) = a * TV(P, Q). P and Q
  are ten tight clusters each (like classes), Q's between P's on the same circle; TV(P, Q), just
  under 1, is computed from the two densities.
- Gaussian shifts: N(0, s^2) against N(mu, s^2) along one direction, TV = 2 Phi(mu / 2s) - 1.

Both put all of the difference in the first two coordinates, where the estimator's top principal
directions find it, so they cannot show what a projection loses. A third family spreads it:

- spread scale: N(0, s^2 I) against N(0, c^2 s^2 I) in all 128 coordinates, every direction
  alike; the densities cross where |x|^2 / s^2 = r = 2 d ln c / (1 - 1/c^2), so
  TV = F_d(r) - F_d(r / c^2) with F_d the chi-square distribution function on d = 128 degrees of
  freedom, and c is solved for each level. Its rows are reported apart ("spread": how far the
  estimate reads below the truth), not in the calibration error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2, norm

from cmcd.eval.divergence import TVEstimate

SIZE, DIM = 1000, 128  # per side and split; the embedding dimension
MIXTURE_LEVELS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # a
GAUSSIAN_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # TV
SPREAD_LEVELS = (0.3, 0.5, 0.7, 0.9)  # TV
SPREAD_STD = 0.1
RADIUS, CLUSTER_STD, NOISE_STD, GAUSSIAN_STD = 0.6, 0.03, 0.02, 0.3
CLUSTERS = 10

Estimator = Callable[..., TVEstimate]  # (fit_a, fit_b, held_a, held_b, seed=...) -> TVEstimate


def _centres(offset: float) -> np.ndarray:
    angles = 2 * np.pi * np.arange(CLUSTERS) / CLUSTERS + offset
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


P_OFFSET, Q_OFFSET = 0.0, np.pi / CLUSTERS  # Q's clusters halfway between P's


def _clusters(rng: np.random.Generator, n: int, offset: float) -> np.ndarray:
    x = rng.normal(0.0, NOISE_STD, (n, DIM))
    x[:, :2] = _centres(offset)[rng.integers(0, CLUSTERS, n)] + rng.normal(0.0, CLUSTER_STD, (n, 2))
    return x


def _cluster_density(points: np.ndarray, offset: float) -> np.ndarray:
    squared = ((points[:, None, :] - _centres(offset)[None]) ** 2).sum(axis=2)
    return np.exp(-squared / (2 * CLUSTER_STD ** 2)).mean(axis=1) / (2 * np.pi * CLUSTER_STD ** 2)


@functools.cache
def clusters_tv(draws: int = 200_000) -> float:
    """TV(P, Q) of the two cluster distributions, E_P[max(0, 1 - q/p)] by Monte Carlo."""
    points = _clusters(np.random.default_rng(0), draws, P_OFFSET)[:, :2]
    ratio = _cluster_density(points, Q_OFFSET) / _cluster_density(points, P_OFFSET)
    return float(np.mean(np.maximum(0.0, 1.0 - ratio)))


def mixture_samples(rng: np.random.Generator, a: float) -> list[np.ndarray]:
    """fit_a, fit_b, held_a, held_b: A from P; B from Q with probability a, else from P."""
    def b_sample():
        x = _clusters(rng, SIZE, P_OFFSET)
        from_q = rng.random(SIZE) < a
        x[from_q] = _clusters(rng, int(from_q.sum()), Q_OFFSET)
        return x
    fit_a, fit_b = _clusters(rng, SIZE, P_OFFSET), b_sample()
    return [fit_a, fit_b, _clusters(rng, SIZE, P_OFFSET), b_sample()]


def gaussian_samples(rng: np.random.Generator, tv: float) -> list[np.ndarray]:
    """fit_a, fit_b, held_a, held_b: two Gaussians whose TV is `tv`."""
    shift = 2 * GAUSSIAN_STD * norm.ppf((1 + tv) / 2)

    def sample(mean: float) -> np.ndarray:
        x = rng.normal(0.0, NOISE_STD, (SIZE, DIM))
        x[:, :2] = rng.normal(0.0, GAUSSIAN_STD, (SIZE, 2))
        x[:, 0] += mean
        return x
    return [sample(0.0), sample(shift), sample(0.0), sample(shift)]


def scale_tv(scale: float, dims: int = DIM) -> float:
    """TV between N(0, I) and N(0, scale^2 I) in `dims` dimensions (scale > 1)."""
    crossing = 2 * dims * np.log(scale) / (1 - scale ** -2)
    return float(chi2.cdf(crossing, dims) - chi2.cdf(crossing / scale ** 2, dims))


def spread_scale(tv: float, dims: int = DIM) -> float:
    """The scale c at which N(0, I) and N(0, c^2 I) are `tv` apart."""
    return brentq(lambda c: scale_tv(c, dims) - tv, 1 + 1e-9, 10.0, xtol=1e-12)


def spread_samples(rng: np.random.Generator, tv: float) -> list[np.ndarray]:
    """fit_a, fit_b, held_a, held_b: isotropic Gaussians of two scales, `tv` apart."""
    scale = spread_scale(tv)
    return [rng.normal(0.0, SPREAD_STD * s, (SIZE, DIM)) for s in (1.0, scale, 1.0, scale)]


def calibrate(estimator: Estimator, name: str, mixture_levels=MIXTURE_LEVELS,
              gaussian_levels=GAUSSIAN_LEVELS, seed: int = 0, spread_levels=SPREAD_LEVELS) -> list[dict]:
    """One row per level: {estimator, family, true_tv, estimated_tv, ci_low, ci_high}."""
    cases = [("mixture", a * clusters_tv(), functools.partial(mixture_samples, a=a))
             for a in mixture_levels]
    cases += [("gaussian", tv, functools.partial(gaussian_samples, tv=tv)) for tv in gaussian_levels]
    cases += [("spread", tv, functools.partial(spread_samples, tv=tv)) for tv in spread_levels]
    rows = []
    for i, (family, true_tv, draw) in enumerate(cases):
        result = estimator(*draw(np.random.default_rng([seed, i])), seed=seed)
        rows.append({"estimator": name, "family": family, "true_tv": round(true_tv, 4),
                     "estimated_tv": round(result.estimate, 4), "ci_low": round(result.ci_low, 4),
                     "ci_high": round(result.ci_high, 4)})
    return rows


def spread_summary(rows: list[dict]) -> dict:
    """What the estimator misses on the spread family: true TV - estimate, per level and at most."""
    rows = [r for r in rows if r["family"] == "spread"]
    losses = {r["true_tv"]: round(r["true_tv"] - r["estimated_tv"], 4) for r in rows}
    return {"levels": len(rows), "loss_by_true_tv": losses,
            "max_loss": max(losses.values()) if losses else None}


def calibration_summary(rows: list[dict]) -> dict:
    """Largest and mean |estimate - true TV|, and the share of intervals that hold the true TV,
    on the families whose difference the estimator's directions can see (not "spread")."""
    rows = [r for r in rows if r["family"] != "spread"]
    errors = [abs(r["estimated_tv"] - r["true_tv"]) for r in rows]
    covered = [r["ci_low"] <= r["true_tv"] <= r["ci_high"] for r in rows]
    return {"levels": len(rows), "max_error": round(max(errors), 4),
            "mean_abs_error": round(float(np.mean(errors)), 4),
            "coverage": round(float(np.mean(covered)), 4)}
