"""One plan and one executor for ``prepare``, used by the CLI, the API and the Processing job alike.

``prepare`` is ``convert`` followed by writing every split in an output format, in this order:

1. :func:`check_inputs` — what prepare needs beyond convert: the kind's image root (COCO's
   ``--image-root``, a manifest's ``--root``), asked of its :class:`~imgprep.sources.registry.Kind`;
2. :func:`plan_prepare` — convert with the packed images' channels and shape announced in
   ``hyperparameters.json`` and no file written yet, then the image source (in-memory arrays for
   MNIST) and the pack options (multi-label data always carries its label vector);
3. :class:`PrepareRun` — one host's run: the ``--resume`` refusal, every split written by the
   output format (:mod:`imgprep.outputs`) with the old generation retired by the first file
   published (:mod:`imgprep.layout.retire`), then the commit (metadata last).  :func:`prepare`
   runs it on one host; :mod:`imgprep.processing.job` runs the same object on every host, the
   first one joining the parts before the commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgprep import outputs
from imgprep.convert import (
    AfterPass,
    ConvertOptions,
    ConvertRequest,
    ConvertResult,
    Echo,
    ImageOutput,
    convert,
    duplicate_pass,
    hyperparameters_line,
    report_duplicates,
)
from imgprep.errors import FormatError, UsageError
from imgprep.formats import classmap, hyperparams
from imgprep.formats.display import Messages, messages
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.layout import prepared
from imgprep.layout.files import OutputFiles
from imgprep.layout.retire import Retirement
from imgprep.outputs.base import OutputFormat
from imgprep.packing.described import describe
from imgprep.packing.packer import PackOptions, PackSummary, list_ref
from imgprep.sources import registry
from imgprep.sources.loaded import Dataset
from imgprep.storage.base import Store


def packed_channels(spec: TransformSpec) -> int:
    """Channels of every packed image: 1 for ``--color 0`` (grayscale), else 3."""
    return 1 if spec.color == 0 else 3


def packed_shape(spec: TransformSpec, dataset: Dataset) -> tuple[int, int, int] | None:
    """``(C, H, W)`` every packed image is known to have (or to exceed, for ``--resize``)."""
    channels = packed_channels(spec)
    if spec.size:
        width, height = spec.size
        return (channels, height, width)
    if spec.resize:
        # Both sides are at least N; the algorithm crops image_shape out of each image (randomly
        # when training), so its default 224 is right whenever N reaches it.
        side = min(hyperparams.DEFAULT_SIDE, spec.resize)
        return (channels, side, side)
    if dataset.image_shape is not None:
        return (channels, dataset.image_shape[1], dataset.image_shape[2])
    if dataset.min_side:
        side = min(hyperparams.DEFAULT_SIDE, dataset.min_side)
        return (channels, side, side)
    return None


def check_inputs(kind: str, options: ConvertOptions, image_root: str | None) -> None:
    """Refuse, before anything is read, a prepare run that could not find its images."""
    registry.get(kind).check_image_root(image_root, options.source.root)


def image_root_for(kind: str, dataset: Dataset, image_root: str | None) -> str:
    """The folder or prefix the lists' paths are relative to."""
    return registry.get(kind).image_root_for(dataset, image_root)


@dataclass(frozen=True)
class PrepareRequest:
    """What a prepare is asked to do, built by a face (the CLI, the API, the Processing job); the
    Store it reads and writes through travels beside it."""

    kind: str
    input: str
    outdir: str
    options: ConvertOptions
    spec: TransformSpec
    pack_options: PackOptions
    image_root: str | None = None
    output_format: str = outputs.DEFAULT

    def conversion(self) -> ConvertRequest:
        """The conversion that starts this prepare."""
        return ConvertRequest(self.kind, self.input, self.outdir, self.options, self.image_root)


def _stored(spec: TransformSpec, pack_options: PackOptions) -> Callable[[bytes], bytes] | None:
    """What pack stores of an image file (None: its bytes as they are), for the duplicate check."""
    if spec.pass_through:
        return None
    from imgprep.imaging.transform import select

    transform = select(pack_options.native).transform_bytes
    return lambda data: transform(data, spec, "")


@dataclass
class PreparePlan:
    """What is packed after the conversion: from which source, with which options."""

    converted: ConvertResult
    source: Any | None  # in-memory images (MNIST); None: image files under the image root
    pack_options: PackOptions
    storage: Store  # every read and write of the run
    # --dedup report: the duplicate report waits for the fingerprints the pack workers take
    report_after_pack: bool = False
    options: ConvertOptions = field(default_factory=ConvertOptions)

    def discard(self) -> None:
        """Remove the pass's temporary fingerprint file (same-split), once the packs are done."""
        path = self.converted.pass_prints
        if path is not None:
            with contextlib.suppress(OSError):
                os.remove(path)
            self.converted.pass_prints = None


def _one_links_switch(request: PrepareRequest) -> PrepareRequest:
    """One switch: what the lists name through links out of the root, pack reads."""
    if not (request.options.follow_links_outside_root or request.pack_options.follow_links_outside_root):
        return request
    return dataclasses.replace(
        request,
        options=dataclasses.replace(request.options, follow_links_outside_root=True),
        pack_options=dataclasses.replace(request.pack_options, follow_links_outside_root=True),
    )


def _splits_check(request: PrepareRequest, storage: Store) -> Callable[[Dataset, Mapping[str, Any]], None]:
    """The outputs' names and ``--resume`` checked from the splits, before any image is read."""
    pack_options, outdir = request.pack_options, request.outdir
    written = outputs.get(request.output_format)

    def before_images(data: Dataset, splits: Mapping[str, Any]) -> None:
        if pack_options.num_classes not in (None, data.num_classes):
            raise UsageError(f"--num-classes {pack_options.num_classes}: the dataset has {data.num_classes} classes "
                             "(prepare states them in the dataset record itself: leave --num-classes out)")
        for name in splits:
            OutputFiles(written.split_output(outdir, name), storage).check_names()
        if pack_options.resume:
            refuse_another_split(written, outdir, {name: data.items(idx.tolist()) for name, idx in splits.items()},
                                 storage)

    return before_images


def _dataset_pack_options(pack_options: PackOptions, dataset: Dataset) -> PackOptions:
    """Multi-label data always carries its label vector; the dataset record states the classes
    (issue 28.1): readers check labels against them."""
    if dataset.multi_label and not pack_options.pack_label:
        pack_options = dataclasses.replace(pack_options, pack_label=True)
    return dataclasses.replace(pack_options, num_classes=dataset.num_classes or None,
                               class_names=tuple(c.name for c in dataset.classes) or None)


def plan_prepare(request: PrepareRequest, storage: Store, *, echo: Echo | None = None,
                 defer_writes: bool = False, in_pack: bool = True) -> PreparePlan:
    """Convert the request's input into lists and metadata under its ``outdir`` and say how to pack
    them (``defer_writes``: the lists and metadata are left in ``converted.files``, see :func:`prepare`).

    ``in_pack`` (one host): the pack workers fingerprint every stored image and write the
    fingerprint file (:mod:`imgprep.formats.prints`) that ``inspect`` reads; with ``--dedup report``
    that replaces the duplicate pass before the pack (each image decoded once more, small), and
    the report follows the packs (:meth:`PrepareRun.write_splits`)."""
    request = _one_links_switch(request)
    spec = request.spec
    channels = packed_channels(spec)
    images = ImageOutput(channels=channels, write=False, shape=lambda data: packed_shape(spec, data),
                         stored=_stored(spec, request.pack_options))
    # the duplicate pass is one of prepare's passes: the same --progress/--quiet as its packs
    run = request.pack_options
    progress = False if run.quiet else run.progress
    records = in_pack and request.output_format == outputs.DEFAULT and request.options.dedup != "off"
    defer = records and request.options.dedup == "report" and not run.resume
    keep = records and request.options.dedup == "same-split" and not run.resume
    converted = convert(request.conversion(), storage=storage, echo=echo, images=images, defer_writes=defer_writes,
                        check_splits=_splits_check(request, storage), progress=progress,
                        after=AfterPass(defer_report=defer, keep_prints=keep))
    dataset = converted.dataset
    if defer and sum(len(idx) for idx in converted.splits.values()) < len(dataset):
        # images in no split are not packed, so not fingerprinted by the pack: the pass runs now
        duplicate_pass(converted, request.conversion(), storage=storage, say=echo or messages(None),
                       stored=images.stored, progress=progress)
        defer = False
    source = dataset.make_source(channels=channels) if dataset.make_source is not None else None
    pack_options = _dataset_pack_options(request.pack_options, dataset)
    if records:  # the pack writes the fingerprint file: the pass's rows (same-split), or its workers'
        pack_options = dataclasses.replace(pack_options, fingerprint=True, fingerprints_from=converted.pass_prints)
    return PreparePlan(converted, source, pack_options, storage, report_after_pack=defer,
                       options=request.options)


@dataclass
class PrepareResult:
    """The conversion plus one packing summary per split."""

    converted: ConvertResult
    packed: dict[str, PackSummary] = field(default_factory=dict)


def prepare(request: PrepareRequest, storage: Store, *, echo: Echo | None = None) -> PrepareResult:
    """Convert, then pack every split into ``OUTDIR/<split>.rec`` + ``.idx`` on this host.

    In-memory datasets (MNIST) are packed straight from their arrays (no image files);
    multi-label data is packed with its multi-hot labels in the record header.

    A prepare commits as a whole: every split is packed first, and the lists, class map,
    manifests and ``hyperparameters.json`` (last) are written only after the last split is
    committed.  The first shard this run publishes retires the old lists and metadata and the old
    outputs of the splits not packed yet, so a killed or failed rerun never leaves one split's
    list beside another generation's records.  ``--resume`` continues the same prepare (the
    split is deterministic) and refuses, in plain words, one that split the data differently.
    """
    kind, outdir, spec, image_root = request.kind, request.outdir, request.spec, request.image_root
    check_inputs(kind, request.options, image_root)
    say = messages(echo)  # tables and packed splits as they come; warnings, then the summary, last
    output = outputs.get(request.output_format)
    plan = plan_prepare(request, storage, echo=say, defer_writes=True)
    out = PrepareResult(converted=plan.converted)
    try:
        source = plan.source if plan.source is not None else image_root_for(kind, plan.converted.dataset, image_root)
        run = PrepareRun(plan, outdir, spec, output, say)
        run.refuse_another_split()
        note = reencode_note(spec, in_memory=plan.source is not None)
        if note:
            say.warn(note)
        out.packed = run.write_splits(source, lambda name, summary: say(f"packed {name}: {summary.format()}"))
    finally:
        plan.discard()
    for target in run.commit(out.packed):
        say(f"wrote {target}")
    say.flush()
    return out


def refuse_another_split(output: OutputFormat, outdir: str, lists: Mapping[str, Sequence[LstItem]],
                         storage: Store) -> None:
    """``--resume`` continues only the same prepare: each split's list must be the one the earlier
    run was writing or wrote (same images and labels, in the same order)."""
    for name, items in lists.items():
        earlier = output.earlier_list(output.split_output(outdir, name), storage)
        if earlier is not None and earlier.sha256 != list_ref(items).sha256:
            raise UsageError(
                f"{outdir}: cannot resume: the earlier prepare split the data differently ({name} held other "
                "images or labels: a different --seed, --split, --train-per-class, --dedup or source?); rerun "
                "without --resume to start over"
            )


class PrepareRun:
    """One host's prepare after the conversion, the same for the CLI, the API and the Processing
    job: the ``--resume`` refusal, the splits written with the retirement of the old generation,
    the commit (metadata from what was written, ``hyperparameters.json`` last).  A multi-host
    job's hosts write shares instead of :meth:`write_splits`; the first host's last steps are
    :meth:`retire_all`, its join, and :meth:`commit`."""

    def __init__(self, plan: PreparePlan, outdir: str, spec: TransformSpec, output: OutputFormat,
                 say: Messages) -> None:
        self.plan, self.outdir, self.spec, self.output, self.say = plan, outdir, spec, output, say
        self.storage = plan.storage
        self.splits = list(plan.converted.lists)
        self.retirement = Retirement(outdir, self.splits, self.storage, self._retire_split,
                                     {name: len(items) for name, items in plan.converted.lists.items()})

    def split_output(self, split: str) -> str:
        return self.output.split_output(self.outdir, split)

    def refuse_another_split(self) -> None:
        """``--resume`` continues only the same prepare: each split's list must be the one the
        earlier run was writing or wrote (same images and labels, in the same order)."""
        if self.plan.pack_options.resume:
            refuse_another_split(self.output, self.outdir, self.plan.converted.lists, self.storage)

    def write_splits(self, source: Any, told: Callable[[str, PackSummary], None]) -> dict[str, PackSummary]:
        """Every split on this host; the first file published retires the old generation."""
        packed: dict[str, PackSummary] = {}
        for position, (name, items) in enumerate(self.plan.converted.lists.items()):
            packed[name] = self.output.write_split(items, source, self.split_output(name), self.spec,
                                                   self.plan.pack_options, storage=self.storage,
                                                   before_publish=self.retirement.before_publishing(position))
            told(name, packed[name])
        self.retirement.finish()  # every split was already complete (--resume): the old files may still be there
        return packed

    def _report_duplicates(self) -> None:
        """``--dedup report`` from the fingerprints the pack workers took of what they stored (read
        from every split's fingerprint file, once the splits are packed or joined)."""
        from imgprep.formats.dataset import record_name
        from imgprep.formats.recordio import output_prefix
        from imgprep.splits.neardup import DEFAULT_THRESHOLD
        from imgprep.splits.prints_file import JoinedPrints, groups_by_id, recorded

        parts = []
        for name in self.splits:
            prefix = output_prefix(self.split_output(name))
            found = recorded(self.storage, prefix)
            if found is None:
                raise FormatError("the dataset record lists no fingerprint file (for the duplicate report)",
                                  path=record_name(prefix))
            parts.append(found[1])
        converted, options = self.plan.converted, self.plan.options
        threshold = DEFAULT_THRESHOLD if options.dedup_threshold is None else options.dedup_threshold
        groups = groups_by_id(JoinedPrints(parts), len(converted.dataset), threshold)
        report_duplicates(converted, groups, options, self.storage, self.say)

    def retire_all(self) -> None:
        """Before outputs published by someone else (the Processing join): the whole old generation."""
        self.retirement.everything()

    def commit(self, written: Mapping[str, Any]) -> list[str]:
        """The lists and metadata, described from what was ``written`` (hyperparameters.json last)."""
        converted = self.plan.converted
        if self.plan.report_after_pack:
            self._report_duplicates()
        describe_packed(converted, written, self.spec, self.outdir, self.storage, self.say, deferred=True)
        published = self.output.publish(self.outdir, written, self.storage, converted)
        converted.write_files(self.storage)
        self.output.finish(self.outdir, written, self.storage)
        return [*published, *converted.outputs]

    def _retire_split(self, split: str) -> None:
        self.output.retire(self.split_output(split), self.storage)


def reencode_note(spec: TransformSpec, *, in_memory: bool) -> str | None:
    """What prepare does to images when no transform was asked for (it re-encodes them)."""
    if in_memory or spec.pass_through or spec.resize or spec.size or spec.center_crop:
        return None
    return (f"no --resize or --size: every image is decoded and re-encoded as {spec.encoding.upper()} "
            f"(quality {spec.quality}) at its own size; --pass-through stores the files' bytes unchanged")


def describe_packed(converted: ConvertResult, packed: Mapping[str, Any], spec: TransformSpec, outdir: str,
                    storage: Store, say: Messages, *, deferred: bool) -> None:
    """``hyperparameters.json`` and ``classes.json`` from what was packed, and say how the records
    differ from the lists (:mod:`imgprep.packing.described`).  ``deferred``: the texts waiting in
    ``converted.files`` are replaced (they are written at the commit point, hyperparameters last);
    otherwise the files convert already wrote under ``outdir`` are rewritten."""
    found = describe(converted.dataset, converted.splits, packed, spec, converted.hyperparameters)
    texts = {prepared.classes_name(outdir): classmap.dumps(found.classes),
             prepared.hyperparameters_name(outdir): hyperparams.dumps(found.hyperparameters)}
    converted.classes, converted.hyperparameters = found.classes, found.hyperparameters
    if deferred:
        converted.files = [(target, texts.get(target, text)) for target, text in converted.files]
    else:
        for target, text in texts.items():
            storage.write_text(target, text)
    if any(getattr(summary, "skipped", 0) for summary in packed.values()):
        say.warn(f"the records differ from the lists; {prepared.HYPERPARAMETERS} and {prepared.CLASSES} describe the "
                 "records:")
        for line in found.differences:
            say.warn(f"  {line}")
    else:  # nothing skipped: at most the image shape was learned from the records
        for line in found.differences:
            say(line)
    say.summary(hyperparameters_line(converted.hyperparameters), replace="hyperparameters: ")
    if "image_shape" in converted.hyperparameters:
        say.drop("  (no image_shape")
