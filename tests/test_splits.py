"""Seeded splits: stratified single-label, per-class quotas, iterative stratification (vs iterstrat)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgprep.errors import SplitError, UsageError
from imgprep.splits.iterative import iterative_stratification
from imgprep.splits.stratify import SplitPlan, largest_remainder, parse_split, split_multi, split_single

SHARES = [
    (("train", 0.8), ("val", 0.2)),
    (("train", 0.7), ("val", 0.2), ("test", 0.1)),
    (("train", 0.34), ("val", 0.33), ("test", 0.33)),
]


def test_parse_split() -> None:
    assert parse_split("train=0.8, val=0.2") == (("train", 0.8), ("val", 0.2))
    for bad, message in [
        ("", "empty"),
        ("train=0.8,val=0.1", "sum to 0.9"),
        ("train=0.8,train=0.2", "twice"),
        ("val=1", "must include a 'train'"),
        ("train=x", "not a number"),
        ("train", "NAME=SHARE"),
        ("train=1.5,val=-0.5", r"\(0, 1\]"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_split(bad)


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(3, 60), min_size=1, max_size=8),
    shares=st.sampled_from(SHARES),
    seed=st.integers(0, 2**32),
)
def test_stratified_shares_within_one_image(sizes, shares, seed) -> None:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(seed).shuffle(labels)
    plan = SplitPlan(fractions=shares, seed=seed)
    splits = split_single(labels, plan, [f"c{i}" for i in range(len(sizes))])
    together = np.concatenate(list(splits.values()))
    assert sorted(together.tolist()) == list(range(labels.size))  # a partition
    for (name, share), idx in zip(shares, splits.values()):
        counts = np.bincount(labels[idx], minlength=len(sizes))
        assert (counts >= 1).all(), name  # every class in every split
        target = np.asarray(sizes) * share
        # within one image of the target, except when the at-least-one rule forced a move
        forced = np.asarray(sizes) * min(s for _, s in shares) < 1
        assert (np.abs(counts - target)[~forced] < 1 + 1e-9).all(), (name, counts, target)


def test_same_seed_same_split_and_other_seed_differs() -> None:
    labels = np.arange(200) % 5
    plan = SplitPlan(fractions=SHARES[1], seed=7)
    a = split_single(labels, plan, list("abcde"))
    b = split_single(labels, plan, list("abcde"))
    c = split_single(labels, SplitPlan(fractions=SHARES[1], seed=8), list("abcde"))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_no_shuffle_keeps_input_order() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    splits = split_single(labels, SplitPlan(fractions=SHARES[0], shuffle=False), ["a", "b"])
    assert splits["train"].tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert splits["val"].tolist() == [3, 8]


def test_too_few_images_names_the_class() -> None:
    labels = np.array([0, 0, 0, 1, 2, 2, 2])
    with pytest.raises(SplitError, match=r"class 'lonely' has 1 image\(s\), too few for 3 splits"):
        split_single(labels, SplitPlan(fractions=SHARES[1]), ["ok", "lonely", "fine"])


def test_unstratified_split_only_counts() -> None:
    labels = np.array([0] * 9 + [1])
    splits = split_single(labels, SplitPlan(fractions=SHARES[0], stratify=False, seed=1), ["a", "b"])
    assert [len(v) for v in splits.values()] == [8, 2]


def test_train_per_class() -> None:
    labels = np.repeat(np.arange(4), [70, 61, 100, 65])
    splits = split_single(labels, SplitPlan(train_per_class=60, seed=3), list("abcd"))
    assert np.bincount(labels[splits["train"]]).tolist() == [60] * 4
    assert np.bincount(labels[splits["val"]]).tolist() == [10, 1, 40, 5]
    with pytest.raises(SplitError, match="'b' has 61 image"):
        split_single(labels, SplitPlan(train_per_class=61), list("abcd"))
    with pytest.raises(UsageError):
        SplitPlan(fractions=SHARES[0], train_per_class=3)


def test_largest_remainder() -> None:
    assert largest_remainder(10, [0.34, 0.33, 0.33]).tolist() == [4, 3, 3]
    assert largest_remainder(3, [0.5, 0.5]).tolist() == [2, 1]


def deviation(y: np.ndarray, assignment: np.ndarray, fractions: list[float]) -> float:
    """Sum over labels and splits of |positives in split - share * positives|."""
    total = y.sum(axis=0)
    return float(sum(np.abs(y[assignment == j].sum(axis=0) - f * total).sum() for j, f in enumerate(fractions)))


def multilabel(n: int, q: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.01, 0.5, q)
    return (rng.random((n, q)) < rates).astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
def test_iterative_no_worse_than_iterstrat(seed) -> None:
    iterstrat = pytest.importorskip("iterstrat.ml_stratifiers")
    y = multilabel(600, 12, seed)
    ours = iterative_stratification(y, [0.75, 0.25], seed=seed)
    splitter = iterstrat.MultilabelStratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)
    _, test = next(splitter.split(np.zeros(len(y)), y))
    theirs = np.zeros(len(y), dtype=np.int64)
    theirs[test] = 1
    assert deviation(y, ours, [0.75, 0.25]) <= deviation(y, theirs, [0.75, 0.25])
    random = np.random.default_rng(seed).permutation(len(y)) < 150
    assert deviation(y, ours, [0.75, 0.25]) < deviation(y, random.astype(int), [0.75, 0.25])


def test_iterative_n_way_sizes_and_determinism() -> None:
    y = multilabel(1000, 6, 9)
    plan = SplitPlan(fractions=SHARES[1], seed=5)
    a = split_multi(y, plan)
    b = split_multi(y, plan)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    sizes = [len(v) for v in a.values()]
    assert sum(sizes) == 1000
    assert all(abs(s - f * 1000) <= 6 for s, (_, f) in zip(sizes, SHARES[1]))
    per_label = y.sum(axis=0)
    for (_, f), idx in zip(SHARES[1], a.values()):
        assert (np.abs(y[idx].sum(axis=0) - f * per_label) <= 2).all()


def test_unlabelled_rows_fill_the_splits() -> None:
    y = np.zeros((10, 3), dtype=np.uint8)
    y[:2, 0] = 1
    assignment = iterative_stratification(y, [0.5, 0.5], seed=0)
    assert np.bincount(assignment).tolist() == [5, 5]
    assert sorted(assignment[:2].tolist()) == [0, 1]
