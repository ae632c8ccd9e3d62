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
from dataclasses import dataclass, field
from typing import Any

from imgprep.convert import ConvertOptions, ConvertResult, Echo, ImageOutput, convert
from imgprep.errors import UsageError
from imgprep.formats import hyperparams
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions, PackSummary, pack
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
) -> PreparePlan:
    """Convert ``input`` into lists and metadata under ``outdir`` and say how to pack them."""
    channels = packed_channels(spec)
    images = ImageOutput(channels=channels, write=False, shape=lambda data: packed_shape(spec, data))
    converted = convert(kind, input, outdir, options, storage=storage, echo=echo, images=images,
                        image_root=image_root)
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
    """
    check_inputs(kind, options, image_root)
    plan = plan_prepare(kind, input, outdir, options=options, spec=spec, pack_options=pack_options,
                        storage=storage, image_root=image_root, echo=echo)
    source = plan.source if plan.source is not None else image_root_for(kind, plan.converted.dataset, image_root)
    out = PrepareResult(converted=plan.converted)
    say = echo or (lambda _line: None)
    for name, items in plan.converted.lists.items():
        summary = pack(items, source, join(outdir, name), spec, plan.pack_options)
        out.packed[name] = summary
        say(f"packed {name}: {summary.format()}")
    return out
