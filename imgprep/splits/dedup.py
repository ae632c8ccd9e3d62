"""Duplicates among a dataset's images, found before it is split: reported, or kept in one split.

``--dedup report`` (the default) says which images are copies of each other and which of those
the split put on both sides; ``--dedup drop`` splits duplicate *groups* instead of images (the
group's first image is stratified, its copies follow it), so no split imgprep makes is leaked
by construction.  Exact copies share a content digest; near copies are within ``threshold`` bits
of mirror-aware pHash (see :mod:`imgprep.imaging.phash`, :mod:`imgprep.splits.neardup`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from imgprep.errors import ImageError, ImgprepError, UsageError
from imgprep.imaging.decode import decode
from imgprep.imaging.phash import NEAR_MIN_SIDE, THUMB_MIN_SIDE, phash_pair
from imgprep.splits.neardup import DEFAULT_THRESHOLD, components, exact_groups, near_pairs

MODES = ("off", "report", "drop")
BATCH = 64  # images per pool task: thread pools submit every task up front
Reader = Callable[[int], "bytes | np.ndarray"]


@dataclass
class Duplicates:
    """Duplicate groups of a dataset: ``group[i]`` is the smallest index of image ``i``'s group."""

    group: np.ndarray
    pairs: list[tuple[int, int, int]] = field(default_factory=list)  # (i, j, pHash bits apart), i < j
    identical: set[tuple[int, int]] = field(default_factory=set)  # the pairs with the same bytes or pixels
    unreadable: int = 0
    small: int = 0  # images under NEAR_MIN_SIDE: checked for exact copies only

    @property
    def members(self) -> dict[int, list[int]]:
        """Group representative -> its other images, for groups of two or more."""
        out: dict[int, list[int]] = {}
        for i, g in enumerate(self.group.tolist()):
            if g != i:
                out.setdefault(g, []).append(i)
        return out


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"--dedup must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _fingerprint(item: bytes | np.ndarray) -> tuple[int, int, int, int]:
    """(content digest, pHash, mirror pHash, smaller side of the stored image)."""
    if isinstance(item, np.ndarray):
        pixels = np.ascontiguousarray(item)
        luma = pixels if pixels.ndim == 2 else pixels.mean(axis=2).astype(np.uint8)
        digest = hashlib.blake2b(pixels.tobytes(), digest_size=8).digest()
        side = min(pixels.shape[:2])
    else:
        found = decode(item, min_side=THUMB_MIN_SIDE, keep_luma=True)
        luma, side = found.luma, min(found.width, found.height)
        digest = hashlib.blake2b(item, digest_size=8).digest()
    ph, mirror = phash_pair(luma) if side >= NEAR_MIN_SIDE else (0, 0)
    return int.from_bytes(digest, "little"), ph, mirror, side


def find(n: int, read: Reader, *, threshold: int = DEFAULT_THRESHOLD, workers: int | None = None) -> Duplicates:
    """Fingerprint images ``0..n-1`` (``read(i)`` gives bytes or pixels) and group the copies.

    Unreadable images stay in groups of their own (the packer reports them later).
    """
    digest = np.zeros(n, np.uint64)
    phash = np.zeros(n, np.uint64)
    mirror = np.zeros(n, np.uint64)
    readable = np.ones(n, bool)
    small = np.zeros(n, bool)

    def one(i: int) -> None:
        try:
            digest[i], phash[i], mirror[i], side = _fingerprint(read(i))
        except (ImageError, ImgprepError, OSError):
            readable[i] = False
        else:
            small[i] = side < NEAR_MIN_SIDE

    def batch(lo: int) -> None:
        for i in range(lo, min(n, lo + BATCH)):
            one(i)

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        list(pool.map(batch, range(0, n, BATCH)))
    ok = np.flatnonzero(readable)
    big = np.flatnonzero(readable & ~small)
    near = {(int(big[i]), int(big[j])): d for i, j, d in near_pairs(phash[big], mirror[big], threshold)}
    identical = {(int(ok[g[0]]), int(ok[m])) for g in exact_groups(digest[ok]) for m in g[1:]}
    pairs = sorted({**near, **{p: 0 for p in identical}}.items())
    flat = [(i, j, d) for (i, j), d in pairs]
    return Duplicates(components(n, [(i, j) for i, j, _ in flat]), flat, identical, int(n - len(ok)),
                      int(small.sum()))


def representatives(dups: Duplicates) -> np.ndarray:
    """The images that are split in drop mode: one per group (its smallest index)."""
    return np.flatnonzero(dups.group == np.arange(len(dups.group)))


def expand(splits: Mapping[str, np.ndarray], dups: Duplicates) -> dict[str, np.ndarray]:
    """Splits of representatives -> splits of images: each copy right after its group's first image."""
    members = dups.members
    return {name: np.array([j for i in idx.tolist() for j in (i, *members.get(i, ()))], dtype=np.int64)
            for name, idx in splits.items()}


def regroup(splits: Mapping[str, np.ndarray], dups: Duplicates) -> dict[str, np.ndarray]:
    """For splits that came with the data: move copies into their group's first image's split."""
    where = {int(i): name for name, idx in splits.items() for i in idx.tolist()}
    out: dict[str, list[int]] = {name: [] for name in splits}
    for name, idx in splits.items():
        for i in idx.tolist():
            out[where.get(int(dups.group[i]), name)].append(i)
    return {name: np.array(idx, dtype=np.int64) for name, idx in out.items()}


def leaks(splits: Mapping[str, np.ndarray], dups: Duplicates) -> list[tuple[int, int, int]]:
    """The duplicate pairs whose two images are in different splits."""
    where = {int(i): name for name, idx in splits.items() for i in idx.tolist()}
    return [(i, j, d) for i, j, d in dups.pairs if i in where and j in where and where[i] != where[j]]
