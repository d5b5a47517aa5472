"""Evaluation of a distilled student, from embeddings only (no models, no training here).

Four views of how good the student is, matching the paper's downstream step and its theory:

- zero-label accuracy: the teacher's linear head, or the nearest teacher class prototype, applied
  to student embeddings, with no target labels at all;
- few-label accuracy: a logistic-regression probe on k labeled student embeddings per class;
- cross-modal retrieval: R@1/5/10 and mAP, student -> teacher and teacher -> student;
- TV distance between teacher and student, by a calibrated two-sample test (cmcd.eval.divergence):
  on the embeddings' top 2 and top 16 principal directions, and on the teacher head's class
  probabilities (what the classifier sees); plus the teacher head's accuracy on the source, the
  other side of the paper's bound.

Every function accepts torch tensors (any device) or numpy arrays. `evaluate` bundles them all
into the JSON-ready dict the CLI prints, the app shows and the benchmarks tabulate.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from cmcd.eval.divergence import TV_DIMS, WIDE_TV_DIMS, TVEstimate, two_sample_tv

PAIRINGS = ("instance", "class")
RECALL_AT = (1, 5, 10)
# sklearn's default; on unit-norm features it keeps the 1-shot probe close to a prototype classifier.
PROBE_C = 1.0
_QUERY_CHUNK = 1024  # rows of the similarity matrix held at once


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _embeddings(x) -> np.ndarray:
    return _to_numpy(x).astype(np.float32, copy=False)


def _labels(x) -> np.ndarray:
    return _to_numpy(x).astype(np.int64, copy=False).reshape(-1)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ----------------------------------------------------------------------------------- zero labels


def class_prototypes(teacher_embeddings, labels, num_classes: int) -> np.ndarray:
    """(C, d) unit-norm mean of the normalised teacher embeddings of each class (zeros if absent)."""
    embeddings = l2_normalize(_embeddings(teacher_embeddings))
    labels = _labels(labels)
    sums = np.zeros((num_classes, embeddings.shape[1]), dtype=np.float32)
    np.add.at(sums, labels, embeddings)
    return l2_normalize(sums)


def _head_parameters(head) -> tuple:
    """(weight, bias or None) of a torch.nn.Linear or of a (weight, bias) pair."""
    return (head.weight, head.bias) if hasattr(head, "weight") else tuple(head)


def head_logits(embeddings, head, normalize: bool = True) -> np.ndarray:
    weight, bias = _head_parameters(head)
    x = _embeddings(embeddings)
    if normalize:
        x = l2_normalize(x)
    logits = x @ _embeddings(weight).T
    return logits if bias is None else logits + _embeddings(bias)


def _cpu_tensor(x) -> torch.Tensor:
    return torch.as_tensor(x).detach().cpu()


def _accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return round(int((predictions == labels).sum()) / len(labels), 4)


@torch.no_grad()
def zero_label_predictions(embeddings, head, normalize: bool = True) -> torch.Tensor:
    """The teacher head's class for each student embedding (see zero_label_accuracy)."""
    x = _cpu_tensor(embeddings).float()
    weight, bias = _head_parameters(head)
    logits = (F.normalize(x, dim=1) if normalize else x) @ _cpu_tensor(weight).float().T
    if bias is not None:
        logits = logits + _cpu_tensor(bias).float()
    return logits.argmax(1)


@torch.no_grad()
def zero_label_accuracy(embeddings, labels, head, prototypes=None, normalize: bool = True) -> dict:
    """Accuracy of the teacher's head and, given `prototypes`, of the nearest teacher class
    prototype on student embeddings, rounded to 4 decimals: no target labels are used.

    `head` is a torch.nn.Linear (d -> C) or a (weight (C, d), bias (C,) or None) pair; `normalize`
    L2-normalises the embeddings before the head, as the head saw them in training. In torch, not
    numpy: it runs after training epochs, and numpy's BLAS threads, once woken, keep spinning and
    slow the next epoch on a small CPU.
    """
    labels = _cpu_tensor(labels).long().reshape(-1)
    result = {"head": _accuracy(zero_label_predictions(embeddings, head, normalize), labels)}
    if prototypes is not None:
        unit = F.normalize(_cpu_tensor(embeddings).float(), dim=1)
        centres = F.normalize(_cpu_tensor(prototypes).float(), dim=1)
        result["prototype"] = _accuracy((unit @ centres.T).argmax(1), labels)
    return result


# ------------------------------------------------------------------------------------ few labels


def labeled_subset(labels: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `shots` random items of every class (all of a class that has fewer)."""
    picks = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        picks.append(rng.choice(members, size=min(shots, len(members)), replace=False))
    return np.concatenate(picks)


def few_label_accuracy(train_emb, train_labels, test_emb, test_labels, shots=(1, 5, 10), draws=5,
                       seed=0) -> dict:
    """Mean test accuracy of a logistic-regression probe trained on k labels per class.

    For each k in `shots`, `draws` labeled subsets are drawn from the train pool; the random stream
    depends on (seed, k, draw) only, so each entry is reproducible on its own.
    """
    from sklearn.linear_model import LogisticRegression  # here: classify must not pay sklearn's import

    train_x, test_x = l2_normalize(_embeddings(train_emb)), l2_normalize(_embeddings(test_emb))
    train_y, test_y = _labels(train_labels), _labels(test_labels)
    result = {}
    with threadpool_limits(1):  # tiny fits: extra BLAS threads only fight a busy machine
        for k in shots:
            accuracies = []
            for draw in range(draws):
                subset = labeled_subset(train_y, k, np.random.default_rng([seed, k, draw]))
                probe = LogisticRegression(C=PROBE_C, solver="lbfgs", max_iter=1000)
                probe.fit(train_x[subset], train_y[subset])
                accuracies.append(np.mean(probe.predict(test_x) == test_y))
            result[str(k)] = float(np.mean(accuracies))
    return result


# ------------------------------------------------------------------------------------- retrieval


def _retrieval_chunk(similarity, relevant, partner) -> tuple[np.ndarray, np.ndarray]:
    """Rank of the first hit and average precision for a block of queries.

    similarity, relevant: (q, N); partner: (q,) gallery index of each query's own pair, or None for
    class matching. Ties are broken against the query (every tied non-hit counts as ranked ahead),
    so a collapsed student that maps everything to one point scores worst, not best.
    """
    if partner is None:
        best_hit = np.where(relevant, similarity, -np.inf).max(axis=1, keepdims=True)
        first_hit_rank = ((similarity >= best_hit) & ~relevant).sum(axis=1)
    else:
        rows = np.arange(len(partner))
        own = similarity[rows, partner][:, None]
        first_hit_rank = (similarity >= own).sum(axis=1) - 1

    # Sort by similarity, descending; among ties, non-relevant items first (lexsort: last key is primary).
    order = np.lexsort((relevant, -similarity), axis=1)
    hits = np.take_along_axis(relevant, order, axis=1).astype(np.float32)
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    n_relevant = hits.sum(axis=1)
    average_precision = (precision_at_rank * hits).sum(axis=1) / np.maximum(n_relevant, 1)
    average_precision[n_relevant == 0] = np.nan
    return first_hit_rank, average_precision


def retrieval_metrics(queries, gallery, query_labels, gallery_labels, pairing: str) -> dict:
    """R@1/5/10 and mAP of cosine-similarity retrieval from `queries` into `gallery`.

    pairing "instance": a hit is the query's own partner, the gallery row with the same index.
    pairing "class": a hit is any gallery item of the query's class.
    mAP always counts every gallery item of the query's class as relevant (queries whose class is
    absent from the gallery are left out of the mean).
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    q, g = l2_normalize(_embeddings(queries)), l2_normalize(_embeddings(gallery))
    q_labels, g_labels = _labels(query_labels), _labels(gallery_labels)
    if pairing == "instance" and len(q) != len(g):
        raise ValueError(f"instance pairing needs as many queries as gallery items ({len(q)} != {len(g)})")

    ranks, precisions = [], []
    for start in range(0, len(q), _QUERY_CHUNK):
        rows = slice(start, start + _QUERY_CHUNK)
        similarity = q[rows] @ g.T
        relevant = q_labels[rows, None] == g_labels[None, :]
        partner = np.arange(len(q))[rows] if pairing == "instance" else None
        rank, average_precision = _retrieval_chunk(similarity, relevant, partner)
        ranks.append(rank)
        precisions.append(average_precision)
    ranks, precisions = np.concatenate(ranks), np.concatenate(precisions)

    metrics = {f"r{k}": float(np.mean(ranks < k)) for k in RECALL_AT}
    metrics["map"] = float(np.nanmean(precisions)) if np.isfinite(precisions).any() else 0.0
    return metrics


def nearest_neighbours(queries, gallery, k: int) -> np.ndarray:
    """(q, k) gallery indices of each query's k most cosine-similar items, most similar first."""
    q, g = l2_normalize(_embeddings(queries)), l2_normalize(_embeddings(gallery))
    similarity = q @ g.T
    k = min(k, similarity.shape[1])
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def retrieval_both_ways(student, teacher, labels, pairing: str) -> dict:
    """Row i of `student` and of `teacher` are a pair; `labels` are shared by both."""
    return {
        "target_to_source": retrieval_metrics(student, teacher, labels, labels, pairing),
        "source_to_target": retrieval_metrics(teacher, student, labels, labels, pairing),
    }


# ----------------------------------------------------------------------------------- TV distance


def tv_distance(teacher_fit, student_fit, teacher_held, student_held, dims: int | None = TV_DIMS,
                seed=0) -> TVEstimate:
    """Estimated TV between teacher and student embeddings (both L2-normalised) on their top
    `dims` pooled principal components: a lower bound on the TV of the whole embeddings (see
    cmcd.eval.divergence)."""
    return two_sample_tv(*(l2_normalize(_embeddings(x)) for x in
                           (teacher_fit, student_fit, teacher_held, student_held)), dims=dims, seed=seed)


def head_probabilities(embeddings, head, normalize: bool = True) -> np.ndarray:
    """Softmax of the teacher head's logits on (normalised) embeddings: the classifier's view."""
    logits = head_logits(embeddings, head, normalize)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def tv_distance_head(teacher_fit, student_fit, teacher_held, student_held, head, normalize: bool = True,
                     seed=0) -> TVEstimate:
    """Estimated TV between teacher and student as the teacher's head sees them (class probabilities).

    By data processing it is at most the embedding TV. It does *not* bound how much the head's
    error can differ between the two: the error depends on how the outputs pair with the labels,
    and a TV between the two distributions of outputs ignores the labels (a student whose
    embeddings are the teacher's, shuffled among items of other classes, has TV 0 here and any
    error). The paper's bound needs a TV between the latent distributions together with a shared
    labelling function. It is computed from the same outputs that define the error, so it cannot
    test the bound either; it is kept as a reference, and its correlation with the error is reported
    beside the others.
    """
    return two_sample_tv(*(head_probabilities(x, head, normalize) for x in
                           (teacher_fit, student_fit, teacher_held, student_held)), dims=None, seed=seed)


def tv_estimates(teacher_fit, student_fit, teacher_held, student_held, head, normalize: bool,
                 seed: int) -> dict[str, TVEstimate]:
    """The TV estimates a run reports: embeddings on TV_DIMS and WIDE_TV_DIMS principal
    directions, and the head's view."""
    splits = (teacher_fit, student_fit, teacher_held, student_held)
    return {f"embedding_{TV_DIMS}d": tv_distance(*splits, seed=seed),
            f"embedding_{WIDE_TV_DIMS}d": tv_distance(*splits, dims=WIDE_TV_DIMS, seed=seed),
            "head": tv_distance_head(*splits, head, normalize, seed=seed)}


# -------------------------------------------------------------------------------------- together


def _rounded(tree, digits: int = 4):
    if isinstance(tree, dict):
        return {key: _rounded(value, digits) for key, value in tree.items()}
    if isinstance(tree, str):
        return tree
    return round(float(tree), digits)


def evaluate(
    *,
    student_test,
    teacher_test,
    test_labels,
    student_val,
    teacher_val,
    pool_student,
    pool_labels,
    head,
    prototypes,
    pairing: str,
    shots=(1, 5, 10),
    draws: int = 5,
    seed: int = 0,
    normalize: bool = True,
) -> dict:
    """Every metric of a distilled student, as plain floats rounded to 4 decimals.

    student_test / teacher_test (N, d), test_labels (N,): paired test embeddings (row i of each is
        one pair) and their classes; every metric is reported on them.
    student_val / teacher_val: another held-out split, used only to fit the TV classifiers.
    pool_student / pool_labels: student embeddings of the distillation pairs with their labels,
        used only as the labeled pool of the few-label probe.
    head, prototypes, normalize: the teacher's linear head and class prototypes (see
        zero_label_accuracy).
    pairing: "instance" (sketch, depth) or "class" (audio) pairs, for retrieval.
    """
    tv = tv_estimates(teacher_val, student_val, teacher_test, student_test, head, normalize, seed)
    metrics = {
        "zero_label_acc": zero_label_accuracy(student_test, test_labels, head, prototypes, normalize),
        "source_acc": zero_label_accuracy(teacher_test, test_labels, head, normalize=normalize),
        "few_label_acc": few_label_accuracy(
            pool_student, pool_labels, student_test, test_labels, shots=shots, draws=draws, seed=seed
        ),
        "retrieval": retrieval_both_ways(student_test, teacher_test, test_labels, pairing),
        "tv_distance": tv[f"embedding_{TV_DIMS}d"].estimate,
        "tv_distance_head": tv["head"].estimate,
        "tv_intervals": {name: estimate.to_dict() for name, estimate in tv.items()},
    }
    return {**_rounded(metrics), "retrieval_match": pairing}


ECE_BINS = 10


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean |accuracy - confidence| over ECE_BINS equal-width confidence bins, weighted by size."""
    confidence_, predicted = probs.max(1)
    right = (predicted == labels).double()
    bins = torch.clamp((confidence_ * ECE_BINS).long(), max=ECE_BINS - 1)
    error = 0.0
    for b in range(ECE_BINS):
        members = bins == b
        if members.any():
            gap = float(right[members].mean() - confidence_[members].double().mean())
            error += abs(gap) * int(members.sum())
    return round(error / len(labels), 4)
