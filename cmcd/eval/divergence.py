"""Total variation (TV) distance between two samples, estimated by a two-sample classifier of
limited capacity on a low-dimensional projection, with a confidence interval.

For any set S, TV(P, Q) >= P(S) - Q(S). The estimator finds such a set and measures it on data it
did not use to find it:

1. project both samples on the top `dims` principal components of the pooled fit split;
2. give every point the share of its k nearest fit points that came from P (for the
   fit points themselves, leaving each point out of its own vote);
3. S = {share >= t}, with the threshold t that separates P from Q best on the fit split;
4. P(S) - Q(S) on the held-out split, with an Agresti-Caffo 95 % interval.

A threshold is chosen rather than a majority vote because where the two densities are close
(a mixture of P with something far away) a majority vote flips at random and loses most of the TV
there. Both the projection and the finite classifier make this a lower bound on the TV of the
full samples; `cmcd.eval.tv_calibration` measures how close it comes on samples of known TV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

# The embeddings' TV on their top 2 principal directions: on 16, which hold nearly all their
# variance, it is already >= 0.98 for most distilled students (the teacher's and the student's
# embeddings barely overlap), so it cannot order them; 2 is the most that still can. Both are
# reported (`cmcd bench theory` counts how many students sit at >= 0.98 on each).
TV_DIMS, WIDE_TV_DIMS = 2, 16
Z_95 = 1.959964


@dataclass(frozen=True)
class TVEstimate:
    estimate: float
    ci_low: float
    ci_high: float

    def to_dict(self, digits: int = 4) -> dict:
        return {"estimate": round(self.estimate, digits), "ci_low": round(self.ci_low, digits),
                "ci_high": round(self.ci_high, digits)}


def balanced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both samples cut to the smaller one's size, at random."""
    n = min(len(a), len(b))
    return a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]


def _projection(fit: np.ndarray, dims: int | None):
    """x -> its coordinates on the top `dims` principal components of `fit` (all: identity)."""
    if dims is None or dims >= fit.shape[1]:
        return lambda x: np.asarray(x, dtype=np.float64)
    from sklearn.decomposition import PCA  # here: classify imports this module, and sklearn costs 2 s

    pca = PCA(n_components=dims, svd_solver="full").fit(fit)
    return pca.transform


def _share_from_a(index, from_a: np.ndarray, x: np.ndarray, neighbours: int,
                  leave_self_out: bool) -> np.ndarray:
    """Share of each point's nearest fit points that came from A."""
    found = index.kneighbors(x, n_neighbors=neighbours + int(leave_self_out), return_distance=False)
    return from_a[found[:, int(leave_self_out):]].mean(axis=1)


def _best_threshold(share: np.ndarray, from_a: np.ndarray) -> float:
    """The t that maximises P_A(share >= t) - P_B(share >= t) on the fit points."""
    levels = np.unique(share)
    said_a = share[None, :] >= levels[:, None]
    gain = said_a[:, from_a == 1].mean(axis=1) - said_a[:, from_a == 0].mean(axis=1)
    return float(levels[int(np.argmax(gain))])


def _difference_interval(hits_a: int, n_a: int, hits_b: int, n_b: int) -> TVEstimate:
    """P_A(S) - P_B(S) from counts, clipped to [0, 1], with the Agresti-Caffo interval."""
    difference = hits_a / n_a - hits_b / n_b
    p_a, p_b = (hits_a + 1) / (n_a + 2), (hits_b + 1) / (n_b + 2)
    centre = p_a - p_b
    half = Z_95 * np.sqrt(p_a * (1 - p_a) / (n_a + 2) + p_b * (1 - p_b) / (n_b + 2))
    clip = lambda v: float(min(1.0, max(0.0, v)))  # noqa: E731
    return TVEstimate(clip(difference), clip(centre - half), clip(centre + half))


def two_sample_tv(fit_a, fit_b, held_a, held_b, dims: int | None = TV_DIMS,
                  neighbours: int | None = None, seed: int = 0) -> TVEstimate:
    """Estimated TV between the distributions of A and B as seen on their top `dims` pooled
    principal components (None: all coordinates); see the module's docstring. `neighbours`
    defaults to the square root of the number of fit points (45 for 2 x 1,000): on the
    calibration samples 30 to 100 all stay within 0.1 of the true TV."""
    a, b = balanced(np.asarray(fit_a), np.asarray(fit_b), np.random.default_rng(seed))
    fit = np.concatenate([a, b]).astype(np.float64)
    from_a = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    with threadpool_limits(1):  # small problems: extra BLAS threads only fight a busy machine
        project = _projection(fit, dims)
        points = project(fit)
        neighbours = min(neighbours or round(np.sqrt(len(points))), len(points) - 1)
        from sklearn.neighbors import NearestNeighbors  # here, as in _projection

        index = NearestNeighbors().fit(points)
        threshold = _best_threshold(_share_from_a(index, from_a, points, neighbours, True), from_a)
        says_a = [(_share_from_a(index, from_a, project(np.asarray(held, dtype=np.float64)),
                                 neighbours, False) >= threshold) for held in (held_a, held_b)]
    return _difference_interval(int(says_a[0].sum()), len(says_a[0]), int(says_a[1].sum()),
                                len(says_a[1]))
