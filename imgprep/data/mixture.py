"""Several datasets read as one, in one deterministic, resumable order.

A :class:`Mixture` is a dataset of *slots*: the loader's :class:`~imgprep.data.order.Order`
shuffles, shares out and resumes slots exactly as it does one dataset's records, so everything
said there (any thread, worker or rank count; elastic resume) holds for mixtures too.  Which
record a slot reads:

- **concatenation** (no ``weights``): slot ``i`` is record ``i`` of the datasets end to end;
  every record once per epoch.
- **weighted** (``weights``, one per dataset): an epoch has ``samples`` slots (default: all the
  datasets' records), dataset ``k`` gets ``round(w_k / Σw × samples)`` of them (largest
  remainders, so the counts add up and each is within one of its share), and its slots walk a
  permutation of its records seeded by ``(seed, k, epoch)`` — without repeats while the quota is
  under the dataset's size, cycling through fresh permutations when it is over (each cycle's
  samples get their own augmentation).  Since the slots are then shuffled globally, any window
  of the epoch holds each dataset in about its proportion; over the epoch the counts are exact.

Labels: ``labels="offset"`` (default) shifts dataset ``k``'s class ids by ``offsets[k]``
(default: the number of classes of the datasets before it, so their classes stay apart);
``labels="names"`` maps each dataset's ids through its class names (``class_names``, one list per
dataset) onto one shared list (:attr:`classes`), so a class present in several datasets is one
id; ``labels="same"`` keeps the ids and checks that the datasets agree where they say (width,
number of classes, names).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from imgprep.data.dataset import Dataset, Sample
from imgprep.data.fetch import get_items
from imgprep.data.order import permutation
from imgprep.data.records import LabelShape
from imgprep.data.transforms import mix
from imgprep.errors import UsageError


class Mixture:
    """``datasets`` as one dataset for :class:`~imgprep.data.Loader` and :class:`~imgprep.data.Sampler`."""

    def __init__(self, datasets: Sequence[Dataset], *, weights: Sequence[float] | None = None,
                 samples: int | None = None, seed: int | None = None, labels: str = "offset",
                 offsets: Sequence[int] | None = None, class_names: Sequence[Sequence[str]] | None = None) -> None:
        self.datasets = list(datasets)
        if not self.datasets or any(len(d) == 0 for d in self.datasets):
            raise UsageError("a mixture needs at least one dataset, none of them empty")
        shapes = {None if d.transform is None else d.transform.shape for d in self.datasets}
        if len(shapes) != 1:
            raise UsageError(f"the datasets of a mixture must give images of one shape (their transforms give "
                             f"{sorted(map(str, shapes))})")
        self.transform = self.datasets[0].transform
        self.seed = self.datasets[0].seed if seed is None else int(seed)
        self.sizes = np.array([len(d) for d in self.datasets], np.int64)
        self.weights = None if weights is None else _weights(weights, len(self.datasets))
        total = int(self.sizes.sum()) if samples is None else int(samples)
        if total < 1:
            raise UsageError(f"samples {samples} must be positive")
        if self.weights is None and samples is not None:
            raise UsageError("samples= sets the epoch of a weighted mixture: give weights too")
        counts = self.sizes if self.weights is None else _quota(self.weights, total)
        self.counts = counts  # slots of each dataset per epoch
        self.bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._labels(labels, offsets, class_names)
        self._lock, self._cache = threading.Lock(), {}

    # ------------------------------------------------------------------ labels

    def _labels(self, mode: str, offsets: Sequence[int] | None, names: Sequence[Sequence[str]] | None) -> None:
        widths = {d.label_width for d in self.datasets}
        if len(widths) != 1:
            raise UsageError(f"the datasets carry labels of different widths ({sorted(widths)})")
        width = widths.pop()
        known = [d.num_classes for d in self.datasets]
        self.classes: list[str] | None = None
        self._maps: list[np.ndarray | None] = [None] * len(self.datasets)
        if mode == "offset":
            num = self._offset_labels(width, offsets, known)
        elif mode == "names":
            num = self._named_labels(width, names, known)
        elif mode == "same":
            num = self._same_labels(names, known)
        else:
            raise UsageError(f"labels={mode!r} must be 'offset', 'names' or 'same'")
        self.labels = LabelShape(width, num)

    def _offset_labels(self, width: int, offsets: Sequence[int] | None, known: list[int | None]) -> int | None:
        """labels='offset': each dataset's class ids shifted past the previous datasets' classes."""
        if width != 1:
            raise UsageError("labels='offset' shifts class ids: these datasets have multi-hot labels "
                             "(use labels='same')")
        if offsets is None:
            if any(n is None for n in known[:-1]):
                raise UsageError("labels='offset' needs each dataset's number of classes (the dataset record "
                                 "does not say): give offsets=[...] or class_names")
            offsets = np.concatenate([[0], np.cumsum(known[:-1])]).tolist() if len(known) > 1 else [0]
        if len(offsets) != len(self.datasets):
            raise UsageError(f"{len(offsets)} offsets for {len(self.datasets)} datasets")
        self.offsets = [int(o) for o in offsets]
        last = [o + n if n is not None else None for o, n in zip(self.offsets, known)]
        return None if None in last else max(last)  # type: ignore[type-var]

    def _named_labels(self, width: int, names: Sequence[Sequence[str]] | None, known: list[int | None]) -> int:
        """labels='names': one class per distinct name, in order of first appearance."""
        if names is None or len(names) != len(self.datasets) or width != 1:
            raise UsageError("labels='names' needs class_names: one list of class names per dataset "
                             "(class ids, not multi-hot labels)")
        self.classes = []
        where: dict[str, int] = {}
        for k, listed in enumerate(names):
            for name in listed:
                if name not in where:
                    where[name] = len(self.classes)
                    self.classes.append(name)
            self._maps[k] = np.array([where[name] for name in listed], np.int64)
            if known[k] is not None and known[k] != len(listed):
                raise UsageError(f"dataset {k} ({self.datasets[k].path}) has {known[k]} classes, "
                                 f"its class_names {len(listed)}")
        self.offsets = [0] * len(self.datasets)
        return len(self.classes)

    def _same_labels(self, names: Sequence[Sequence[str]] | None, known: list[int | None]) -> int | None:
        """labels='same': every dataset already uses the same class ids."""
        if len({n for n in known if n is not None}) > 1:
            raise UsageError(f"labels='same' but the datasets have {known} classes")
        if names is not None and any(list(n) != list(names[0]) for n in names):
            k = next(k for k, n in enumerate(names) if list(n) != list(names[0]))
            raise UsageError(f"labels='same' but dataset {k}'s class names differ from dataset 0's: "
                             "use labels='names' to map them")
        self.offsets = [0] * len(self.datasets)
        self.classes = list(names[0]) if names is not None else None
        return next((n for n in known if n is not None), None)

    def _label(self, k: int, label: Any) -> Any:
        table = self._maps[k]
        if table is not None:
            if not 0 <= label < table.size:
                where = self.datasets[k].path
                raise UsageError(f"dataset {k} ({where}): label {label} has no class name ({table.size} given)")
            return int(table[label])
        return label + self.offsets[k] if self.offsets[k] else label

    # ------------------------------------------------------------------ the dataset protocol

    def __len__(self) -> int:
        return int(self.bounds[-1])

    @property
    def label_width(self) -> int:
        return self.labels.width

    @property
    def num_classes(self) -> int | None:
        return self.labels.num_classes

    @property
    def skipped(self) -> int:
        return sum(d.skipped for d in self.datasets)

    @property
    def identity(self) -> str:
        """What the mixture reads (each dataset's records and its slots per epoch), for a saved state."""
        parts = [f"{getattr(d, 'identity', '')}*{int(c)}" for d, c in zip(self.datasets, self.counts, strict=True)]
        return "mix:" + hashlib.sha256("|".join(parts).encode()).hexdigest()

    def source(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Which dataset each slot reads from."""
        return np.searchsorted(self.bounds, np.asarray(indices, np.int64), side="right") - 1

    def _where(self, indices: Sequence[int] | np.ndarray, epoch: int) -> list[tuple[int, int, int]]:
        """``(dataset, record, augmentation epoch)`` of each slot."""
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"slot {int(indices.max())} of a mixture of {len(self)}")
        out = []
        for i, k in zip(indices.tolist(), self.source(indices).tolist()):
            slot = i - int(self.bounds[k])
            if self.weights is None:
                out.append((k, slot, epoch))
                continue
            size = int(self.sizes[k])
            cycle = slot // size
            key = mix(epoch, cycle)
            out.append((k, int(self._permutation(k, key)[slot % size]), epoch if cycle == 0 else key))
        return out

    def _permutation(self, k: int, key: int) -> np.ndarray:
        """Dataset ``k``'s order for one cycle; the last few kept (a batch asks for the same ones)."""
        with self._lock:
            got = self._cache.get((k, key))
            if got is None:
                got = permutation(int(self.sizes[k]), mix(self.seed, k), key)
                if len(self._cache) >= 4 * len(self.datasets):
                    self._cache.pop(next(iter(self._cache)))
                self._cache[(k, key)] = got
            return got

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock, self._cache = threading.Lock(), {}

    def resolve(self, indices: Sequence[int] | np.ndarray, epoch: int) -> list[tuple[Dataset, int]]:
        """``(dataset, record)`` of each slot (what the loader's fetcher reads)."""
        return [(self.datasets[k], r) for k, r, _ in self._where(indices, epoch)]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[np.ndarray, Any] | None:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        got = self.samples([int(index)], int(epoch))
        return (got[0].image, got[0].label) if got else None

    def __getitems__(self, keys: Sequence[Any]) -> list[tuple[np.ndarray, Any] | None]:
        """A DataLoader batch at once, its records read together (:func:`imgprep.data.fetch.get_items`)."""
        return get_items(self, keys)

    def samples(self, indices: Sequence[int] | np.ndarray, epoch: int = 0, out: np.ndarray | None = None,
                fetched: Sequence[Future] | None = None) -> list[Sample]:
        """Slots ``indices`` of ``epoch`` as :class:`Sample` objects (``index``: the slot), like
        :meth:`Dataset.samples`; each dataset decodes its own records."""
        indices = [int(i) for i in indices]
        where = self._where(indices, epoch)
        groups: dict[tuple[int, int], list[int]] = {}
        for j, (k, _, aug) in enumerate(where):
            groups.setdefault((k, aug), []).append(j)
        got: dict[int, Sample] = {}
        for (k, aug), members in groups.items():
            part = self.datasets[k].samples([where[j][1] for j in members], aug, None,
                                            None if fetched is None else [fetched[j] for j in members])
            it = iter(part)
            sample = next(it, None)
            for j in members:  # damaged records (errors="skip") are missing from part, in order
                if sample is not None and sample.index == where[j][1]:
                    got[j] = sample
                    sample = next(it, None)
        result = []
        for j in range(len(indices)):
            if j in got:
                s = got[j]
                image = s.image
                if out is not None and len(got) == len(indices):
                    out[j] = image
                    image = out[j]
                result.append(Sample(image, self._label(where[j][0], s.label), s.id, indices[j]))
        return result

    def __repr__(self) -> str:
        kind = "concatenated" if self.weights is None else f"weighted {np.round(self.weights, 3).tolist()}"
        return f"Mixture({len(self.datasets)} datasets, {kind}, {len(self)} samples per epoch)"


def _weights(weights: Sequence[float], n: int) -> np.ndarray:
    w = np.asarray([float(x) for x in weights], np.float64)
    if w.size != n or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise UsageError(f"weights {list(weights)} must be {n} non-negative numbers, not all zero")
    return w / w.sum()


def _quota(weights: np.ndarray, total: int) -> np.ndarray:
    """Whole counts adding up to ``total``, each within one of ``weight × total`` (largest remainders)."""
    exact = weights * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts
