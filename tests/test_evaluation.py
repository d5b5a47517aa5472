import json
import math

import numpy as np
import pytest
import torch

from cmcd.eval.metrics import (
    class_prototypes,
    evaluate,
    few_label_accuracy,
    head_probabilities,
    nearest_neighbours,
    retrieval_both_ways,
    retrieval_metrics,
    tv_distance,
    tv_distance_head,
    zero_label_accuracy,
)

NUM_CLASSES = 10
DIM = 16


def clusters(n, spread, seed=0, dim=DIM, num_classes=NUM_CLASSES):
    """n points around num_classes random centres; returns (embeddings, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim))
    labels = np.arange(n) % num_classes
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32), labels


def at_angles(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


# ------------------------------------------------------------------------------------- retrieval


def test_tiny_example_computed_by_hand():
    # Gallery at 0, 30, 90, 180 degrees with classes 0, 0, 1, 1; queries at 0, 80, 200, 10 degrees.
    # Rankings by angle: q0 -> g0 g1 g2 g3, q1 -> g2 g1 g0 g3, q2 -> g3 g2 g0 g1, q3 -> g0 g1 g2 g3.
    gallery = at_angles([0, 30, 90, 180])
    queries = at_angles([0, 80, 200, 10])
    labels = np.array([0, 0, 1, 1])
    instance = retrieval_metrics(queries, gallery, labels, labels, "instance")
    # Own partner first only for q0; all four within the top 5.
    assert instance["r1"] == pytest.approx(1 / 4)
    assert instance["r5"] == 1.0 and instance["r10"] == 1.0
    # Class-relevant positions: q0 {1,2} -> 1; q1 {2,3} -> (1/2 + 2/3)/2; q2 {1,2} -> 1;
    # q3 {3,4} -> (1/3 + 2/4)/2.
    expected_map = (1 + 7 / 12 + 1 + 5 / 12) / 4
    assert instance["map"] == pytest.approx(expected_map)
    # Top item of the query's class: yes for q0, q2; no for q1 (g2), q3 (g0).
    by_class = retrieval_metrics(queries, gallery, labels, labels, "class")
    assert by_class["r1"] == pytest.approx(1 / 2)
    assert by_class["map"] == pytest.approx(expected_map)


def test_identical_embeddings_retrieve_their_partner_both_ways():
    teacher, labels = clusters(300, spread=0.5)
    both = retrieval_both_ways(torch.from_numpy(teacher), teacher, labels, "instance")
    for direction in ("target_to_source", "source_to_target"):
        assert both[direction]["r1"] == 1.0
        assert both[direction]["r10"] == 1.0


def test_class_matching_differs_from_instance_matching():
    # Each student embedding sits on another item of the same class: wrong instance, right class.
    teacher, labels = clusters(200, spread=0.3)
    other_of_same_class = (np.arange(200) + NUM_CLASSES) % 200
    student = teacher[other_of_same_class]
    instance = retrieval_metrics(student, teacher, labels, labels, "instance")
    by_class = retrieval_metrics(student, teacher, labels, labels, "class")
    assert instance["r1"] == 0.0
    assert by_class["r1"] == 1.0
    assert instance["map"] == by_class["map"] > 0.9


def test_collapsed_student_gets_no_credit_from_ties():
    teacher, labels = clusters(50, spread=0.5)
    student = np.ones_like(teacher)  # as a gallery, every item ties with every other for every query
    metrics = retrieval_metrics(teacher, student, labels, labels, "instance")
    assert metrics["r1"] == 0.0 and metrics["r10"] == 0.0
    assert retrieval_metrics(teacher, student, labels, labels, "class")["r1"] == 0.0


def test_nearest_neighbours_are_ranked_by_cosine_similarity():
    gallery = at_angles([0, 90, 10, 180, 45])
    assert nearest_neighbours(at_angles([3]), gallery, k=3).tolist() == [[0, 2, 4]]
    assert nearest_neighbours(at_angles([170, 80]) * 7, gallery, k=1).tolist() == [[3], [1]]
    assert nearest_neighbours(at_angles([0]), gallery, k=99).shape == (1, 5)


def test_retrieval_rejects_unknown_pairing():
    with pytest.raises(ValueError):
        retrieval_metrics(np.eye(3), np.eye(3), [0, 1, 2], [0, 1, 2], "pairs")


# ----------------------------------------------------------------------------------- TV distance


def test_tv_is_near_zero_for_the_same_distribution():
    teacher, _ = clusters(400, spread=0.5)
    student = teacher.copy()
    assert tv_distance(teacher[:200], student[:200], teacher[200:], student[200:]).estimate < 0.15


def test_tv_is_near_one_for_an_offset_student():
    teacher, _ = clusters(400, spread=0.5)
    student = teacher + 5.0 * np.eye(DIM, dtype=np.float32)[0]
    assert tv_distance(teacher[:200], student[:200], teacher[200:], student[200:]).estimate > 0.9


def test_head_tv_ignores_what_the_head_cannot_see_but_not_what_it_can():
    unseen = np.eye(DIM, dtype=np.float32)[0]  # a direction the head never reads
    base, labels = clusters(400, spread=0.5, seed=3)
    base[:, 0] = 0.0
    teacher = base + 3.0 * unseen
    head = (class_prototypes(base, labels, NUM_CLASSES) * 10, None)
    halves = lambda a, b: (a[:200], b[:200], a[200:], b[200:])  # noqa: E731
    # Mirrored along the unseen direction: same norms, same logits, yet plainly another distribution.
    mirrored = base - 3.0 * unseen
    assert tv_distance(*halves(teacher, mirrored)).estimate > 0.9
    assert tv_distance_head(*halves(teacher, mirrored), head=head).estimate < 0.2
    # Every item moved onto another class is plain to see through the head too.
    moved = np.roll(teacher, 1, axis=1)
    assert tv_distance_head(*halves(teacher, moved), head=head).estimate > 0.9


def test_head_probabilities_are_a_distribution_over_classes():
    teacher, labels = clusters(50, spread=0.5, seed=4)
    prototypes = class_prototypes(teacher, labels, NUM_CLASSES)
    probabilities = head_probabilities(teacher, (prototypes * 50, np.ones(NUM_CLASSES)))
    assert probabilities.shape == (50, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == labels) > 0.9


# ---------------------------------------------------------------------------------- zero labels


def test_class_prototypes_are_unit_norm_class_means():
    embeddings = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0], [-4.0, 0.0]])
    prototypes = class_prototypes(embeddings, [0, 0, 1, 1], num_classes=2)
    assert np.allclose(prototypes[0], [math.sqrt(0.5), math.sqrt(0.5)], atol=1e-6)
    assert np.allclose(prototypes[1], [-math.sqrt(0.5), -math.sqrt(0.5)], atol=1e-6)


def test_prototypes_classify_separated_clusters_and_random_points_at_chance():
    teacher, labels = clusters(500, spread=0.1, seed=1)
    prototypes = class_prototypes(teacher, labels, NUM_CLASSES)
    student, _ = clusters(500, spread=0.1, seed=1)  # same centres, so the same classes
    assert zero_label_accuracy(student, labels, (prototypes, None), prototypes)["prototype"] == 1.0

    random_student = np.random.default_rng(2).normal(size=(2000, DIM))
    random_labels = np.arange(2000) % NUM_CLASSES
    accuracy = zero_label_accuracy(random_student, random_labels, (prototypes, None), prototypes)["prototype"]
    assert 0.05 < accuracy < 0.16


def test_head_built_from_prototypes_matches_prototype_accuracy():
    teacher, labels = clusters(400, spread=1.5, seed=3)  # overlapping, so accuracy is well below 1
    prototypes = class_prototypes(teacher, labels, NUM_CLASSES)
    head = torch.nn.Linear(DIM, NUM_CLASSES)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(prototypes))
        head.bias.zero_()
    noise = np.random.default_rng(4).normal(size=teacher.shape).astype(np.float32)
    student = torch.from_numpy(teacher + 0.5 * noise)
    accuracy = zero_label_accuracy(student, torch.from_numpy(labels), head, prototypes)
    assert 0.2 < accuracy["prototype"] < 1.0
    assert accuracy["head"] == accuracy["prototype"]


# ----------------------------------------------------------------------------------- few labels


def test_few_label_probe_separates_clusters():
    pool, pool_labels = clusters(400, spread=0.2, seed=5)
    test, test_labels = clusters(200, spread=0.2, seed=5)
    accuracy = few_label_accuracy(pool, pool_labels, test, test_labels, shots=(1, 5), draws=2)
    assert set(accuracy) == {"1", "5"}
    assert accuracy["1"] > 0.95 and accuracy["5"] > 0.95


def test_few_label_probe_is_at_chance_on_random_labels_and_deterministic():
    rng = np.random.default_rng(6)
    pool, pool_labels = rng.normal(size=(400, DIM)), rng.integers(0, NUM_CLASSES, 400)
    test, test_labels = rng.normal(size=(1000, DIM)), rng.integers(0, NUM_CLASSES, 1000)
    first = few_label_accuracy(pool, pool_labels, test, test_labels, shots=(1, 10), draws=3, seed=7)
    again = few_label_accuracy(pool, pool_labels, test, test_labels, shots=(1, 10), draws=3, seed=7)
    assert first == again
    assert all(0.04 < value < 0.17 for value in first.values())
    # Each entry depends only on (seed, k, draw), not on which other shots were asked for.
    only_ten = few_label_accuracy(pool, pool_labels, test, test_labels, shots=(10,), draws=3, seed=7)
    assert only_ten["10"] == first["10"]


# -------------------------------------------------------------------------------------- evaluate


def test_evaluate_returns_exactly_the_documented_json():
    teacher, labels = clusters(120, spread=0.5, seed=8)
    student = torch.from_numpy(teacher + 0.1)
    pool, pool_labels = clusters(200, spread=0.5, seed=8)
    prototypes = class_prototypes(teacher, labels, NUM_CLASSES)
    result = evaluate(
        student_test=student[:60], teacher_test=teacher[:60], test_labels=labels[:60],
        student_val=student[60:], teacher_val=teacher[60:],
        pool_student=pool, pool_labels=pool_labels,
        head=(prototypes, np.zeros(NUM_CLASSES)), prototypes=prototypes, pairing="class", draws=2,
    )
    retrieval_keys = {"r1", "r5", "r10", "map"}
    assert set(result) == {"zero_label_acc", "source_acc", "few_label_acc", "retrieval", "tv_distance",
                           "tv_distance_head", "tv_intervals", "retrieval_match"}
    assert set(result["source_acc"]) == {"head"}
    assert set(result["tv_intervals"]) == {"embedding_2d", "embedding_16d", "head"}
    assert result["tv_intervals"]["embedding_2d"]["estimate"] == result["tv_distance"]
    for interval in result["tv_intervals"].values():
        assert interval["ci_low"] <= interval["estimate"] <= interval["ci_high"]
    assert set(result["zero_label_acc"]) == {"head", "prototype"}
    assert set(result["few_label_acc"]) == {"1", "5", "10"}
    assert set(result["retrieval"]) == {"target_to_source", "source_to_target"}
    assert all(set(metrics) == retrieval_keys for metrics in result["retrieval"].values())
    assert result["retrieval_match"] == "class"

    def leaves(tree):
        for value in tree.values():
            yield from leaves(value) if isinstance(value, dict) else [value]

    numbers = list(leaves({key: value for key, value in result.items() if key != "retrieval_match"}))
    assert len(numbers) == 2 + 1 + 3 + 8 + 2 + 3 * 3
    assert all(type(number) is float and number == round(number, 4) for number in numbers)
    assert json.loads(json.dumps(result)) == result


def test_zero_label_accuracy_rounds_and_reads_a_head_alone():
    labels = np.array([0, 1, 2])
    head = (np.eye(3, dtype=np.float32), None)
    embeddings = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])  # the last is wrong
    assert zero_label_accuracy(embeddings, labels, head) == {"head": 0.6667}
    # Against a bias, length matters: unnormalised, this long vector outvotes class 1's bias.
    long_one, biased = np.array([[2.0, 0.0, 0.0]]), (np.eye(3), np.array([0.0, 1.5, 0.0]))
    assert zero_label_accuracy(long_one, [0], biased, normalize=False)["head"] == 1.0
    assert zero_label_accuracy(long_one, [0], biased)["head"] == 0.0


# ------------------------------------------------------------------------- catalogue and records


def test_metrics_are_read_by_their_place_in_the_metrics_dict():
    from cmcd.eval import records

    metrics = {"zero_label_acc": {"head": 0.9, "prototype": 0.8},
               "retrieval": {"target_to_source": {"r1": 0.25}}, "tv_distance": 1}
    assert records.ZERO_LABEL_HEAD.read(metrics) == 0.9
    assert records.R1_TARGET_TO_SOURCE.read(metrics) == 0.25
    assert records.TV_EMBEDDINGS.read(metrics) == 1.0 and not records.TV_EMBEDDINGS.higher_is_better
    with pytest.raises(KeyError):
        records.FEW_LABEL_1.read(metrics)
    for columns in (records.EVALUATED, records.PAPER_TABLE, records.COMPARE, records.ONE_RUN):
        assert len({m.heading for m in columns}) == len({m.label for m in columns}) == len(columns)


def test_every_catalogued_metric_is_in_what_evaluate_returns():
    from cmcd.eval import records

    teacher, labels = clusters(60, spread=0.2, seed=5)
    prototypes = class_prototypes(teacher, labels, NUM_CLASSES)
    result = evaluate(student_test=teacher, teacher_test=teacher, test_labels=labels,
                      student_val=teacher, teacher_val=teacher, pool_student=teacher,
                      pool_labels=labels, head=(prototypes, None), prototypes=prototypes,
                      pairing="instance", draws=1)
    run = {**result, "pairs_per_s": 10.0, "wall_s": 1.5}
    assert [m.read(run) for m in records.ONE_RUN][-2:] == [10.0, 1.5]
    assert all(0.0 <= m.read(run) <= 1.0 for m in records.EVALUATED)


def test_run_record_round_trips_and_a_benchmark_run_keeps_its_three_keys():
    from cmcd.eval.records import RunRecord

    full = RunRecord({"pair": "digits-sketch"}, {"wall_s": 1.0}, [{"step": 1, "loss": 2.0}],
                     [{"epoch": 1, "head": 0.5}])
    assert RunRecord.from_json(json.loads(json.dumps(full.to_json()))) == full
    benchmark_run = RunRecord({"pair": "digits-sketch"}, {"wall_s": 1.0}, study="main").to_json()
    assert list(benchmark_run) == ["study", "config", "metrics"]


def test_embed_batches_normalises_and_leaves_the_encoder_as_it_was():
    from cmcd.modalities import build_encoder
    from cmcd.models.embed import embed

    encoder = build_encoder("sketch", width=8)
    inputs = torch.rand(7, 1, 32, 32)
    whole, batched = embed(encoder, inputs), embed(encoder, inputs, batch_size=3)
    assert encoder.training and whole.device.type == "cpu" and whole.dtype == torch.float32
    assert torch.allclose(whole, batched, atol=1e-6)
    assert torch.allclose(embed(encoder, inputs, normalize=True).norm(dim=1), torch.ones(7), atol=1e-5)
