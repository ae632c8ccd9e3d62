"""What an output format answers: where a split goes, how it is written, published, resumed,
retired, and how verify and inspect open it.

The prepare executor (:class:`imgprep.plan.PrepareRun`) holds one format and asks it, in this
order, for every run (CLI, API, Processing job alike):

1. ``--resume``: :meth:`OutputFormat.earlier_list` of each split's output, so a resume that
   split the data differently is refused before anything is written;
2. each split: :meth:`OutputFormat.write_split` into :meth:`OutputFormat.split_output`, calling
   ``before_publish`` once, just before the first file it publishes (the old generation of the
   folder — lists, metadata, later splits — is retired there, by :meth:`OutputFormat.retire`);
3. the commit: the lists, ``classes.json`` and ``hyperparameters.json`` (last), from the
   summaries ``write_split`` returned (their ``records``, ``skipped_items``, ``sizes``).

A format writes its own files only: the lists and metadata beside them are the layout's
(:mod:`imgprep.layout.prepared`).  Verify and inspect open a path through the format that
:meth:`OutputFormat.accepts` it (:func:`imgprep.outputs.opening`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from imgprep.formats.dataset import ListRef
    from imgprep.formats.lst import LstItem
    from imgprep.imaging.spec import TransformSpec
    from imgprep.inspect.analyse import Findings
    from imgprep.packing.packer import PackOptions, PackSummary
    from imgprep.storage.base import Store
    from imgprep.verify.report import Report


class OutputFormat(abc.ABC):
    """One output format; subclasses set :attr:`name` and register one instance
    (:func:`imgprep.outputs.register`).  Instances hold no run state: one serves every run."""

    name: ClassVar[str]
    # a multi-host Processing job packs parts and joins them into this format's output
    joins_parts: ClassVar[bool] = False

    def split_output(self, outdir: str, split: str) -> str:
        """Where split ``split`` of a prepare into ``outdir`` goes (a prefix or a folder)."""
        from imgprep.layout.prepared import split_prefix

        return split_prefix(outdir, split)

    @abc.abstractmethod
    def write_split(self, items: Collection[LstItem], source: Any, output: str, spec: TransformSpec,
                    options: PackOptions, *, storage: Store,
                    before_publish: Callable[[], None] | None = None) -> PackSummary:
        """Write ``items`` (in order) from ``source`` (an image root or in-memory images) to
        ``output`` through ``storage``; call ``before_publish`` once, before publishing anything.  Nothing half-written
        is ever visible under ``output``; ``options.resume`` continues an earlier run."""

    def publish(self, outdir: str, written: Mapping[str, Any], storage: Store, converted: Any) -> list[str]:
        """At the commit, once every split is written and before the class map and
        ``hyperparameters.json``: publish what the format commits last (the image format's
        lists) and adjust the files ``converted`` waits to write.  The URIs published; RecordIO
        publishes each split as it goes and has nothing left."""
        return []

    def finish(self, outdir: str, written: Mapping[str, Any], storage: Store) -> None:  # noqa: B027 - optional hook
        """After the commit: remove what the new generation replaced (the image format's old images)."""

    @abc.abstractmethod
    def earlier_list(self, output: str, storage: Store) -> ListRef | None:
        """The list an earlier run wrote (or was writing) to ``output``, or None."""

    @abc.abstractmethod
    def retire(self, output: str, storage: Store) -> None:
        """Remove what a run published at ``output`` (an older generation of a prepared folder)."""

    def accepts(self, path: str, storage: Store) -> bool:
        """``path`` is this format's output (verify and inspect choose the format by this)."""
        return False

    @abc.abstractmethod
    def verify(self, path: str, storage: Store, **options: Any) -> Report:
        """``imgprep verify PATH``: every record or file of ``path`` checked (options as
        :func:`imgprep.verify.run.verify` takes them)."""

    @abc.abstractmethod
    def inspect(self, path: str, storage: Store, **options: Any) -> Findings:
        """``imgprep inspect PATH``, read through ``storage`` (options as
        :func:`imgprep.inspect.run.inspect` takes them)."""
