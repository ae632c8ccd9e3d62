"""Generations of a prepared folder: what an earlier run left, and retiring it.

A prepare commits as a whole, so the first file a run publishes retires the old generation: the
lists, class map and hyperparameters (the run writes them last) and the outputs of the splits
not written yet or no longer made.  Every face (CLI, API, Processing job) retires through
:class:`Retirement`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from imgprep.formats.dataset import ListRef, from_json
from imgprep.layout.files import OutputFiles
from imgprep.layout.names import progress_name, record_name
from imgprep.layout.prepared import METADATA, SPLIT_FILES, SPLIT_NAMES
from imgprep.layout.progress import Progress
from imgprep.storage.base import Store, join

RetireSplit = Callable[[str], None]  # removes one split's published output, given the split's name


def retire_output(prefix: str, storage: Store) -> None:
    """Remove the published output of ``prefix`` in the order of the publishing invariant 2
    (:mod:`imgprep.packing.publish`: dataset record, progress, every ``.idx``, every ``.rec``, the
    rest): another split of a prepare being redone."""
    files = OutputFiles(prefix, storage)
    names = files.names()
    first = [record_name(prefix), progress_name(prefix)]
    ordered = first + [n for n in names if n.endswith(".idx")] + [n for n in names if n.endswith(".rec")]
    for uri in ordered + [n for n in names if n not in ordered]:
        files.remove(uri)


def earlier_list(prefix: str, storage: Store) -> ListRef | None:
    """The list an earlier run packed (or was packing) into ``prefix``, or None."""
    files = OutputFiles(prefix, storage)
    raw = files.read(progress_name(prefix))
    if raw is not None:
        return Progress.from_json(raw, progress_name(prefix)).record.list
    raw = files.read(record_name(prefix))
    return from_json(raw, record_name(prefix)).list if raw is not None else None


def retire_prepared(outdir: str, splits: Sequence[str], storage: Store,
                    retire_split: RetireSplit | None = None) -> None:
    """Remove what an earlier prepare wrote under ``outdir`` that this one has not written yet:
    the class map, hyperparameters, every list and manifest (they name the splits), then the
    outputs of ``splits`` (``retire_split``: the output format's; default RecordIO's prefixes)."""
    for name in METADATA:
        storage.delete(join(outdir, name))
    for split in sorted({*SPLIT_NAMES, *splits}):
        for suffix in SPLIT_FILES:
            storage.delete(join(outdir, split + suffix))
    for split in splits:
        if retire_split is None:
            retire_output(join(outdir, split), storage)
        else:
            retire_split(split)


class Retirement:
    """The old generation of a prepare's output folder, retired once, by the first file a run
    publishes (the writer's ``before_publish``): the lists, class map and hyperparameters (this
    run writes them last), and the outputs of the splits not written yet or no longer made."""

    def __init__(self, outdir: str, splits: Sequence[str], storage: Store,
                 retire_split: RetireSplit | None = None, sizes: Mapping[str, int] | None = None) -> None:
        self.outdir, self.splits, self.storage = outdir, list(splits), storage
        self.retire_split = retire_split
        self.dropped = [name for name in SPLIT_NAMES if name not in self.splits]
        self.sizes = dict(sizes or {})  # list items per split: the space check counts the later ones
        self.done = False

    def before_publishing(self, position: int) -> Callable[[], None]:
        """The hook for the write of split number ``position``: the splits after it are not written
        yet.  It also tells the publisher's space check (``Publisher._check_space``) the items still
        to write after this split and the old files retiring frees (``items``, ``old``)."""
        later = self.splits[position + 1:] + self.dropped
        return _Hook(lambda: self._retire(later), sum(self.sizes.get(n, 0) for n in self.splits[position + 1:]),
                     lambda: [] if self.done else self._old(later))

    def _old(self, splits: list[str]) -> list[str]:
        return [uri for split in splits for uri in OutputFiles(join(self.outdir, split), self.storage).names()]

    def finish(self) -> None:
        """After the last split: what no write retired (every split was already complete)."""
        self._retire(self.dropped)

    def everything(self) -> None:
        """Before outputs published by someone else (the Processing join): every split goes."""
        self._retire(self.splits + self.dropped)

    def _retire(self, splits: list[str]) -> None:
        if not self.done:
            retire_prepared(self.outdir, splits, self.storage, self.retire_split)
            self.done = True


@dataclass(frozen=True)
class _Hook:
    """``before_retiring`` of one split's write: retires the rest of the old prepare when called."""

    retire: Callable[[], None]
    items: int  # list items of the splits written after this one
    old: Callable[[], list[str]]  # the old files that retiring removes

    def __call__(self) -> None:
        self.retire()
