"""Seeded train/val/test splits: stratified by class, per-class quotas, or plain random.

Rules (single-label, stratified):

* each class is split on its own: its count in split *j* is its size times the split's share,
  rounded by the largest-remainder method, so it is within one image of the target;
* every split gets at least one image of every class; a class with fewer images than there
  are splits is a :class:`SplitError` naming it.  When the rounding gave a split nothing, one
  image moves there from the split furthest above its target; only in extreme shares (e.g.
  3 images split 0.98/0.01/0.01) can that move leave the donor more than one image off;
* ``per_class`` (the Caltech protocol) puts N random images of each class in train and the
  rest in val; a class with N or fewer images is a SplitError (val would miss it).

Everything draws from one ``numpy.random.default_rng(seed)`` in a fixed order, so the same
labels and seed give the same splits on every machine.  With ``shuffle`` off the input order
decides (the first images of each class go to the first split) and is kept in the output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imgprep.errors import SplitError, UsageError
from imgprep.splits.iterative import iterative_stratification

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class SplitPlan:
    """How to split: named fractions or a per-class train quota, plus seed and flags."""

    fractions: tuple[tuple[str, float], ...] | None = None
    train_per_class: int | None = None
    stratify: bool = True
    shuffle: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.fractions is not None and self.train_per_class is not None:
            raise UsageError("--split and --train-per-class cannot be used together")
        if self.train_per_class is not None and self.train_per_class < 1:
            raise UsageError(f"--train-per-class must be at least 1, got {self.train_per_class}")

    @property
    def names(self) -> list[str]:
        if self.train_per_class is not None:
            return ["train", "val"]
        return [name for name, _ in self.fractions or ()]


def parse_split(text: str) -> tuple[tuple[str, float], ...]:
    """``"train=0.8,val=0.2"`` -> ``(("train", 0.8), ("val", 0.2))``; shares must sum to 1."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError("--split is empty (expected e.g. train=0.8,val=0.2)")
    out: list[tuple[str, float]] = []
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise UsageError(f"--split: {part!r} is not NAME=SHARE (e.g. train=0.8)")
        try:
            share = float(value)
        except ValueError:
            raise UsageError(f"--split: share {value.strip()!r} of {name!r} is not a number") from None
        if not 0 < share <= 1:
            raise UsageError(f"--split: share of {name!r} must be in (0, 1], got {value.strip()}")
        if name in (n for n, _ in out):
            raise UsageError(f"--split names {name!r} twice")
        out.append((name, share))
    total = sum(s for _, s in out)
    if abs(total - 1) > 1e-6:
        raise UsageError(f"--split shares sum to {total:g}, not 1")
    if "train" not in (n for n, _ in out):
        raise UsageError("--split must include a 'train' split")
    return tuple(out)


def largest_remainder(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Integer counts summing to ``n``, each within one of ``n * fraction`` (ties: earlier split)."""
    target = n * np.asarray(fractions, dtype=np.float64)
    counts = np.floor(target).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        order = np.argsort(-(target - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def stratum_counts(n: int, fractions: Sequence[float], *, label: str, names: Sequence[str]) -> np.ndarray:
    """Per-split counts for one class: largest remainder, then at least one per split."""
    k = len(fractions)
    if n < k:
        raise SplitError(f"class {label} has {n} image(s), too few for {k} splits ({', '.join(names)})")
    counts = largest_remainder(n, fractions)
    target = n * np.asarray(fractions, dtype=np.float64)
    for j in np.flatnonzero(counts == 0).tolist():
        surplus = np.where(counts >= 2, counts - target, -np.inf)
        donor = int(np.argmax(surplus))
        counts[donor] -= 1
        counts[j] += 1
    return counts


def _groups(labels: np.ndarray, num_classes: int) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=num_classes))])
    return [order[bounds[c] : bounds[c + 1]] for c in range(num_classes)]


def _finish(parts: list[np.ndarray], rng: np.random.Generator, shuffle: bool) -> list[np.ndarray]:
    out = []
    for part in parts:
        part = np.sort(np.asarray(part, dtype=np.int64))
        out.append(rng.permutation(part) if shuffle else part)
    return out


def _check_nonempty(parts: list[np.ndarray], names: Sequence[str]) -> None:
    for name, part in zip(names, parts):
        if part.size == 0:
            raise SplitError(f"split {name!r} would be empty; too few images for the shares asked")


def split_single(labels: np.ndarray, plan: SplitPlan, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Split single-label data (``labels`` = class ids) as ``plan`` says."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(plan.seed)
    names = plan.names
    k = len(names)
    parts: list[list[np.ndarray]] = [[] for _ in range(k)]
    if plan.train_per_class is not None:
        quota = plan.train_per_class
        for c, members in enumerate(_groups(labels, len(class_names))):
            if members.size == 0:
                continue
            if members.size <= quota:
                raise SplitError(
                    f"class {class_names[c]!r} has {members.size} image(s); --train-per-class {quota} "
                    "leaves none for validation"
                )
            members = rng.permutation(members) if plan.shuffle else members
            parts[0].append(members[:quota])
            parts[1].append(members[quota:])
    else:
        fractions = [f for _, f in plan.fractions or ()]
        if plan.stratify:
            for c, members in enumerate(_groups(labels, len(class_names))):
                if members.size == 0:
                    continue
                counts = stratum_counts(members.size, fractions, label=repr(class_names[c]), names=names)
                members = rng.permutation(members) if plan.shuffle else members
                for j, piece in enumerate(np.split(members, np.cumsum(counts)[:-1])):
                    parts[j].append(piece)
        else:
            everything = np.arange(labels.size)
            everything = rng.permutation(everything) if plan.shuffle else everything
            counts = largest_remainder(labels.size, fractions)
            for j, piece in enumerate(np.split(everything, np.cumsum(counts)[:-1])):
                parts[j].append(piece)
    joined = [np.concatenate(p) if p else np.empty(0, dtype=np.int64) for p in parts]
    _check_nonempty(joined, names)
    return dict(zip(names, _finish(joined, rng, plan.shuffle)))


def split_multi(labels: np.ndarray, plan: SplitPlan) -> dict[str, np.ndarray]:
    """Split multi-label data (``labels`` = multi-hot matrix): iterative stratification or random."""
    if plan.train_per_class is not None:
        raise UsageError("--train-per-class needs single-label data; use --split for multi-label data")
    names = plan.names
    fractions = [f for _, f in plan.fractions or ()]
    n = labels.shape[0]
    if plan.stratify:
        assignment = iterative_stratification(labels, fractions, seed=plan.seed, shuffle=plan.shuffle)
        joined = [np.flatnonzero(assignment == j) for j in range(len(names))]
    else:
        rng0 = np.random.default_rng(plan.seed)
        everything = rng0.permutation(n) if plan.shuffle else np.arange(n)
        joined = np.split(everything, np.cumsum(largest_remainder(n, fractions))[:-1])
    _check_nonempty(joined, names)
    # a separate stream for the output order, so it does not depend on the split method's draws
    rng = np.random.default_rng([plan.seed, 1])
    return dict(zip(names, _finish(joined, rng, plan.shuffle)))


# --- the plan checked before any image is read (issue 32.2) ---


def check_feasible(labels: np.ndarray, plan: SplitPlan, class_names: Sequence[str], *, multi_label: bool) -> None:
    """Refuse, from the labels alone, a split that :func:`split_single`/:func:`split_multi` would
    refuse: so a run fails before its images are fingerprinted or packed, and says what would work."""
    names = plan.names
    if multi_label:
        if plan.train_per_class is not None:
            raise UsageError("--train-per-class needs single-label data; use --split for multi-label data")
        _check_sizes(labels.shape[0], plan, names)
        return
    sizes = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    present = [(int(n), c) for c, n in enumerate(sizes.tolist()) if n]
    if plan.train_per_class is not None:
        _check_quota(present, plan.train_per_class, class_names)
    elif plan.stratify:
        for n, c in present:
            stratum_counts(n, [f for _, f in plan.fractions or ()], label=repr(class_names[c]), names=names)
    else:
        _check_sizes(int(sizes.sum()), plan, names)


def _check_quota(present: list[tuple[int, int]], quota: int, class_names: Sequence[str]) -> None:
    short = sorted((n, c) for n, c in present if n <= quota)
    if not short:
        return
    n, c = short[0]
    others = f" ({len(short)} classes have {quota} or fewer)" if len(short) > 1 else ""
    fix = f"--train-per-class {n - 1} (the smallest class less one) or " if n >= 2 else ""
    raise SplitError(f"class {class_names[c]!r} has {n} image(s); --train-per-class {quota} leaves none for "
                     f"validation{others}: use {fix}--split (e.g. train=0.8,val=0.2)")


def _check_sizes(n: int, plan: SplitPlan, names: Sequence[str]) -> None:
    counts = largest_remainder(n, [f for _, f in plan.fractions or ()])
    empty = [name for name, count in zip(names, counts.tolist(), strict=True) if count == 0]
    if empty:
        raise SplitError(f"split {empty[0]!r} would be empty; too few images for the shares asked")


# --- end of the plan checks ---
