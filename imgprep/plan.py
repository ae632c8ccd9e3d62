"""One plan for ``prepare``, used by the CLI, the API and the Processing job alike.

``prepare`` is ``convert`` followed by ``pack`` for every split, in this order:

1. :func:`check_inputs` — what prepare needs beyond convert: COCO's image root, the local copy of a
   Ground Truth manifest's images;
2. :func:`plan_prepare` — convert with the packed images' channels and shape announced in
   ``hyperparameters.json`` and no image files written, then the image source (in-memory
   arrays for MNIST) and the pack options (multi-label data always carries its label vector);
3. pack each split: :func:`prepare` here on one host, :mod:`imgprep.processing.job` on many.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgprep.convert import ConvertOptions, ConvertResult, Echo, ImageOutput, convert, hyperparameters_line
from imgprep.errors import UsageError
from imgprep.formats import classmap, hyperparams
from imgprep.formats.display import Messages, messages
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.described import describe
from imgprep.packing.packer import PackOptions, PackSummary, list_ref, pack
from imgprep.packing.publish import earlier_list, retire_output
from imgprep.sources.loaded import Dataset
from imgprep.storage.base import Store, join


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
    if kind == "coco" and not image_root:
        raise UsageError("prepare coco needs --image-root (the folder or s3:// prefix holding the images)")
    if kind == "manifest" and not (image_root or options.source.root):
        raise UsageError("prepare manifest needs --root (the local copy of the images' S3 prefix)")


def image_root_for(kind: str, dataset: Dataset, image_root: str | None) -> str:
    """The folder or prefix the lists' paths are relative to."""
    root = image_root or dataset.root
    if not root:
        flag = "--root" if kind == "manifest" else "--image-root"
        raise UsageError(f"prepare {kind} needs {flag} (the folder holding the images)")
    return root


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


def plan_prepare(
    kind: str,
    input: str,
    outdir: str,
    *,
    options: ConvertOptions,
    spec: TransformSpec,
    pack_options: PackOptions,
    storage: Store,
    image_root: str | None = None,
    echo: Echo | None = None,
    defer_writes: bool = False,
) -> PreparePlan:
    """Convert ``input`` into lists and metadata under ``outdir`` and say how to pack them
    (``defer_writes``: the lists and metadata are left in ``converted.files``, see :func:`prepare`)."""
    if options.follow_links_outside_root or pack_options.follow_links_outside_root:
        # one switch: what the lists name through links out of the root, pack reads
        options = dataclasses.replace(options, follow_links_outside_root=True)
        pack_options = dataclasses.replace(pack_options, follow_links_outside_root=True)
    channels = packed_channels(spec)
    images = ImageOutput(channels=channels, write=False, shape=lambda data: packed_shape(spec, data),
                         stored=_stored(spec, pack_options))
    converted = convert(kind, input, outdir, options, storage=storage, echo=echo, images=images,
                        image_root=image_root, defer_writes=defer_writes)
    dataset = converted.dataset
    source = dataset.make_source(channels=channels) if dataset.make_source is not None else None
    if dataset.multi_label and not pack_options.pack_label:
        pack_options = dataclasses.replace(pack_options, pack_label=True)
    return PreparePlan(converted, source, dataclasses.replace(pack_options, storage=storage))


@dataclass
class PrepareResult:
    """The conversion plus one packing summary per split."""

    converted: ConvertResult
    packed: dict[str, PackSummary] = field(default_factory=dict)


def prepare(
    kind: str,
    input: str,
    outdir: str,
    *,
    options: ConvertOptions,
    spec: TransformSpec,
    pack_options: PackOptions,
    storage: Store,
    image_root: str | None = None,
    echo: Echo | None = None,
) -> PrepareResult:
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
    check_inputs(kind, options, image_root)
    say = messages(echo)  # tables and packed splits as they come; warnings, then the summary, last
    plan = plan_prepare(kind, input, outdir, options=options, spec=spec, pack_options=pack_options,
                        storage=storage, image_root=image_root, echo=say, defer_writes=True)
    source = plan.source if plan.source is not None else image_root_for(kind, plan.converted.dataset, image_root)
    converted = plan.converted
    if plan.pack_options.resume:
        _refuse_another_split(outdir, converted.lists, storage)
    out = PrepareResult(converted=converted)
    note = reencode_note(spec, in_memory=plan.source is not None)
    if note:
        say.warn(note)
    retirement = Retirement(outdir, list(converted.lists), storage)
    for position, (name, items) in enumerate(converted.lists.items()):
        summary = pack(items, source, join(outdir, name), spec, plan.pack_options,
                       before_publish=retirement.before_publishing(position))
        out.packed[name] = summary
        say(f"packed {name}: {summary.format()}")
    retirement.finish()  # every split was already complete (--resume): the old files may still be there
    describe_packed(converted, out.packed, spec, outdir, storage, say, deferred=True)
    converted.write_files(storage)  # the commit point: hyperparameters.json is written last
    for target in converted.outputs:
        say(f"wrote {target}")
    say.flush()
    return out


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
    texts = {join(outdir, "classes.json"): classmap.dumps(found.classes),
             join(outdir, "hyperparameters.json"): hyperparams.dumps(found.hyperparameters)}
    converted.classes, converted.hyperparameters = found.classes, found.hyperparameters
    if deferred:
        converted.files = [(target, texts.get(target, text)) for target, text in converted.files]
    else:
        for target, text in texts.items():
            storage.write_text(target, text)
    if found.differences:
        say.warn("the records differ from the lists; hyperparameters.json and classes.json describe the records:")
        for line in found.differences:
            say.warn(f"  {line}")
    say.summary(hyperparameters_line(converted.hyperparameters), replace="hyperparameters: ")
    if "image_shape" in converted.hyperparameters:
        say.drop("  (no image_shape")


SPLIT_NAMES = ("train", "val", "test")  # the splits convert writes by default; others come from --split


class Retirement:
    """The old generation of a prepare's output folder, retired once, by the first shard a run
    publishes (the packer's ``before_publish``): the lists, class map and hyperparameters (this
    run writes them last), and the outputs of the splits not packed yet or no longer made."""

    def __init__(self, outdir: str, splits: Sequence[str], storage: Store) -> None:
        self.outdir, self.splits, self.storage = outdir, list(splits), storage
        self.dropped = [name for name in SPLIT_NAMES if name not in self.splits]
        self.done = False

    def before_publishing(self, position: int) -> Callable[[], None]:
        """The hook for the pack of split number ``position``: the splits after it are not packed yet."""
        later = self.splits[position + 1:] + self.dropped
        return lambda: self._retire(later)

    def finish(self) -> None:
        """After the last split: what no pack retired (every split was already complete)."""
        self._retire(self.dropped)

    def everything(self) -> None:
        """Before outputs published by someone else (the Processing join): every split goes."""
        self._retire(self.splits + self.dropped)

    def _retire(self, splits: list[str]) -> None:
        if not self.done:
            retire_prepared(self.outdir, splits, self.storage)
            self.done = True


def retire_prepared(outdir: str, splits: Sequence[str], storage: Store) -> None:
    """Remove what an earlier prepare wrote under ``outdir`` that this one has not written yet:
    the class map, hyperparameters, every list and manifest (they name the splits), then the
    packed outputs of ``splits`` (:func:`imgprep.packing.publish.retire_output`)."""
    for name in ("hyperparameters.json", "classes.json"):
        storage.delete(join(outdir, name))
    for split in sorted({*SPLIT_NAMES, *splits}):
        for suffix in (".lst", ".manifest"):
            storage.delete(join(outdir, split + suffix))
    for split in splits:
        retire_output(join(outdir, split), storage)


def _refuse_another_split(outdir: str, lists: Mapping[str, Sequence[LstItem]], storage: Store) -> None:
    """``prepare --resume`` continues only the same prepare: each split's list must be the one
    the earlier run was packing or packed (same images and labels, in the same order)."""
    for name, items in lists.items():
        earlier = earlier_list(join(outdir, name), storage)
        if earlier is not None and earlier.sha256 != list_ref(items).sha256:
            raise UsageError(
                f"{outdir}: cannot resume: the earlier prepare split the data differently ({name} held other "
                f"images or labels: a different --seed, --split, --train-per-class, --dedup or source?); rerun "
                "without --resume to start over"
            )
