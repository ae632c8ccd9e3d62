"""Dataset -> lists, class map, hyperparameters and manifests (``convert``), then RecordIO (``prepare``).

One function per face: the CLI commands in :mod:`imgprep.cli.convert` only parse options and
call :func:`convert` / :func:`prepare`.  Every output is a pure function of the inputs, the
options and the seed, so a rerun produces byte-identical files.  The one time stamp in the
outputs, the manifests' ``creation-date``, follows this rule (see :func:`creation_date`):
``--creation-date`` if given, else ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention),
else the newest modification time among the input files the source read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.errors import UsageError
from imgprep.formats import classmap, hyperparams
from imgprep.formats import manifest as manifest_format
from imgprep.formats.lst import LstItem, dumps
from imgprep.requirements import require_for
from imgprep.sources.dataset import Dataset
from imgprep.splits import dedup as dedup_mod
from imgprep.splits.stratify import SplitPlan, parse_split, split_multi, split_single
from imgprep.storage.base import Store, is_remote, join

KINDS = ("folders", "caltech", "coco", "mnist", "manifest")
DEFAULT_SPLIT = (("train", 0.8), ("val", 0.2))
IMAGES_FOLDER = "images"
Echo = Callable[[str], None]


def load_dataset(kind: str, input: str, **options: Any) -> Dataset:
    """Load ``input`` with the ``kind`` source; ``options`` are that source's keyword arguments."""
    if kind == "folders":
        from imgprep.sources.folders import load_folders as loader
    elif kind == "caltech":
        from imgprep.sources.caltech import load_caltech as loader
    elif kind == "coco":
        from imgprep.sources.coco import load_coco as loader
    elif kind == "mnist":
        from imgprep.sources.mnist import load_mnist as loader
    elif kind == "manifest":
        from imgprep.sources.gtmanifest import load_manifest as loader
    else:
        raise UsageError(f"unknown dataset kind {kind!r} (one of {', '.join(KINDS)})")
    import inspect

    accepted = set(inspect.signature(loader).parameters)
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"{flags} cannot be used with {kind} data")
    return loader(input, **{k: v for k, v in options.items() if k in accepted and v is not None})


def make_plan(
    dataset: Dataset,
    *,
    split: str | Sequence[tuple[str, float]] | None = None,
    train_per_class: int | None = None,
    stratify: bool = True,
    shuffle: bool = True,
    seed: int = 0,
) -> SplitPlan | None:
    """The split to make; None keeps the split that came with the data (MNIST train/t10k).

    Defaults: Caltech -> 60 training images per class (the classic protocol); data with its
    own split -> that split; everything else -> train=0.8,val=0.2.
    """
    fractions = parse_split(split) if isinstance(split, str) else (tuple(split) if split else None)
    if fractions is None and train_per_class is None:
        if dataset.preset:
            return None
        if dataset.kind == "caltech":
            from imgprep.sources.caltech import DEFAULT_TRAIN_PER_CLASS

            train_per_class = DEFAULT_TRAIN_PER_CLASS
        else:
            fractions = DEFAULT_SPLIT
    return SplitPlan(
        fractions=fractions, train_per_class=train_per_class, stratify=stratify, shuffle=shuffle, seed=seed
    )


def make_splits(
    dataset: Dataset, plan: SplitPlan | None, *, shuffle: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Image indices per split, in output order."""
    if plan is None:
        rng = np.random.default_rng(seed)
        preset = dataset.preset or {}
        return {name: (rng.permutation(idx) if shuffle else idx) for name, idx in preset.items()}
    if dataset.multi_label:
        return split_multi(dataset.labels, plan)
    return split_single(dataset.labels, plan, [c.name for c in dataset.classes])


def creation_date(explicit: str | None, dataset: Dataset) -> str:
    """The manifests' ``creation-date``: explicit > SOURCE_DATE_EPOCH > newest input mtime (UTC)."""
    if explicit:
        try:
            when = _dt.datetime.fromisoformat(explicit.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--creation-date {explicit!r} is not an ISO-8601 date/time") from None
        if when.tzinfo is not None:
            when = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f")
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            stamp = float(int(epoch))
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not an integer") from None
    else:
        stamp = float(int(dataset.mtime))
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass
class ConvertResult:
    """What :func:`convert` wrote, and the numbers a caller needs next."""

    dataset: Dataset
    splits: dict[str, np.ndarray]
    lists: dict[str, list[LstItem]]
    outputs: list[str] = field(default_factory=list)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    classes: dict[str, Any] = field(default_factory=dict)
    channel: dict[str, Any] | None = None
    image_root: str | None = None
    duplicates: dedup_mod.Duplicates | None = None


def count_table(dataset: Dataset, splits: Mapping[str, np.ndarray]) -> list[str]:
    """Per-class counts per split (positives per label for multi-label data), as text lines."""
    names = list(splits)
    counts = {s: dataset.class_counts(idx) for s, idx in splits.items()}
    width = max([len(c.name) for c in dataset.classes] + [5])
    head = f"{'index':>5}  {'class':<{width}}" + "".join(f"  {s:>8}" for s in names)
    lines = [head]
    for i, c in enumerate(dataset.classes):
        lines.append(f"{i:>5}  {c.name:<{width}}" + "".join(f"  {int(counts[s][i]):>8}" for s in names))
    lines.append(f"{'':>5}  {'images':<{width}}" + "".join(f"  {len(splits[s]):>8}" for s in names))
    return lines


def _write_mnist_images(
    dataset: Dataset, outdir: str, channels: int, encoding: str, storage: Store
) -> str:
    """Encode every in-memory image once into ``OUTDIR/images/<class>/...`` (lossless PNG or JPEG)."""
    import io

    from PIL import Image

    pixels = dataset.pixels
    if pixels is None:
        raise UsageError("this dataset has no in-memory images to write")
    root = join(outdir, IMAGES_FOLDER)
    remote = is_remote(root)
    if not remote:
        for c in dataset.classes:
            os.makedirs(os.path.join(root, c.path or c.name), exist_ok=True)
    fmt = "PNG" if encoding == "png" else "JPEG"
    params: dict[str, Any] = {"compress_level": 6} if fmt == "PNG" else {"quality": 95}
    for i, rel in enumerate(dataset.paths):
        img = Image.fromarray(pixels[i], "L")
        if channels == 3:
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, fmt, **params)
        target = join(root, rel)
        if remote:
            storage.write_bytes(target, buf.getvalue())
        else:
            with open(target, "wb") as fh:
                fh.write(buf.getbuffer())
    return root


def convert(
    kind: str,
    input: str,
    outdir: str,
    *,
    split: str | Sequence[tuple[str, float]] | None = None,
    train_per_class: int | None = None,
    stratify: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    manifest_prefix: str | None = None,
    label_format: str = "multi-hot",
    attribute: str = "class",
    job_name: str | None = None,
    creation: str | None = None,
    channels: int = 3,
    image_format: str = "png",
    write_images: bool = True,
    image_shape: tuple[int, int, int] | Callable[[Dataset], tuple[int, int, int] | None] | None = None,
    echo: Echo | None = None,
    source_options: Mapping[str, Any] | None = None,
    storage: Store | None = None,
    dedup: str = "report",
    dedup_threshold: int | None = None,
    image_root: str | None = None,
) -> ConvertResult:
    """Load, split and write ``train.lst``/``val.lst``/…, ``classes.json``, ``hyperparameters.json``
    and (with ``manifest_prefix``) ``<split>.manifest`` under ``outdir`` (local or ``s3://``).

    ``channels``/``image_format`` apply to in-memory sources (MNIST), whose images are written
    under ``OUTDIR/images`` unless ``write_images`` is False; ``image_shape`` (a shape, or a
    function of the loaded dataset) overrides the shape taken from the data (``prepare``
    passes the packed size).  ``dedup`` (off, report, drop) looks for copies among the images
    first (read from the source, or from ``image_root`` when the source has no root: COCO) and
    reports the ones the split puts on both sides, or splits duplicate groups whole.
    """
    dedup_mod.check_mode(dedup)
    if channels not in (1, 3):
        raise UsageError(f"channels must be 1 or 3, got {channels}")
    if seed < 0:
        raise UsageError(f"--seed must not be negative, got {seed}")
    require_for([input, outdir], decode=kind == "mnist" and write_images)
    if storage is None:
        from imgprep.storage.stores import Storage

        storage = Storage()
    from imgprep.storage.probe import check_access

    check_access(storage, writes=[outdir.rstrip("/") + "/"], reads=[input, image_root])
    options = dict(source_options or {})
    if kind == "mnist":
        options.setdefault("encoding", image_format)
    manifest_options = None
    if manifest_prefix is not None:
        manifest_options = manifest_format.ManifestOptions(
            prefix=manifest_prefix,
            attribute=attribute,
            label_format=label_format,
            job_name=job_name or f"imgprep-{kind}",
            creation_date="",
        )
    dataset = load_dataset(kind, input, **options)
    plan = make_plan(
        dataset, split=split, train_per_class=train_per_class, stratify=stratify, shuffle=shuffle, seed=seed
    )
    say = echo or (lambda _line: None)
    if dataset.num_classes == 1:
        dataset.notes.append("only one class: a classifier needs at least two (check the layout options)")
    for note in dataset.notes:
        say(f"{dataset.origin}: {note}")
    dups = None
    if dedup != "off":
        dups = _duplicates(dataset, image_root, dedup, dedup_threshold, storage, say, shown=echo is not None)
    if dedup == "drop" and dups is not None and dups.pairs:
        splits = _split_groups(dataset, plan, dups, shuffle=shuffle, seed=seed)
    else:
        splits = make_splits(dataset, plan, shuffle=shuffle, seed=seed)
    if dups is not None:
        _say_duplicates(dataset, splits, dups, dedup, say)
    result = ConvertResult(dataset=dataset, splits=splits, lists={}, duplicates=dups)

    image_root = dataset.root
    if dataset.pixels is not None and write_images:
        image_root = _write_mnist_images(dataset, outdir, channels, image_format, storage)
    result.image_root = image_root
    if dataset.pixels is not None and write_images and image_root is not None:
        say(f"wrote {len(dataset):,} {image_format.upper()} images under {image_root} (give `--root {image_root}` "
            "to imgprep pack)")

    for name, idx in splits.items():
        items = dataset.items(idx.tolist())
        result.lists[name] = items
        target = join(outdir, f"{name}.lst")
        storage.write_text(target, dumps(items))
        result.outputs.append(target)

    split_counts = {name: dataset.class_counts(idx) for name, idx in splits.items()}
    result.classes = classmap.build(
        kind=dataset.kind,
        classes=dataset.classes,
        multi_label=dataset.multi_label,
        split_counts=split_counts,
        split_sizes={name: len(idx) for name, idx in splits.items()},
    )
    target = join(outdir, "classes.json")
    storage.write_text(target, classmap.dumps(result.classes))
    result.outputs.append(target)

    shape = image_shape(dataset) if callable(image_shape) else image_shape
    if shape is None and dataset.image_shape is not None:
        _, h, w = dataset.image_shape
        shape = (channels, h, w)
    if shape is None and dataset.min_side:
        side = min(hyperparams.DEFAULT_SIDE, dataset.min_side)
        shape = (3, side, side)
    train = splits.get("train", next(iter(splits.values())))
    result.hyperparameters = hyperparams.hyperparameters(
        num_classes=dataset.num_classes,
        num_training_samples=len(train),
        multi_label=dataset.multi_label,
        shape=shape,
        train_labels=dataset.labels[train] if dataset.multi_label else None,
    )
    target = join(outdir, "hyperparameters.json")
    storage.write_text(target, hyperparams.dumps(result.hyperparameters))
    result.outputs.append(target)

    if manifest_options is not None:
        manifest_options = dataclasses.replace(manifest_options, creation_date=creation_date(creation, dataset))
        names = [c.name for c in dataset.classes]
        for name, items in result.lists.items():
            records = (
                manifest_format.record(
                    it.path, it.labels, names, multi_label=dataset.multi_label, options=manifest_options
                )
                for it in items
            )
            target = join(outdir, f"{name}.manifest")
            storage.write_text(target, manifest_format.dumps(records))
            result.outputs.append(target)
        result.channel = manifest_format.channel_settings(multi_label=dataset.multi_label, options=manifest_options)

    what = "positive labels" if dataset.multi_label else "images"
    say(f"{dataset.num_classes} classes, {len(dataset)} images; {what} per class and split:")
    for line in count_table(dataset, splits):
        say(line)
    for target in result.outputs:
        say(f"wrote {target}")
    say("hyperparameters: " + ", ".join(f"{k}={v}" for k, v in result.hyperparameters.items()))
    if "image_shape" not in result.hyperparameters:
        say("  (no image_shape: the lists do not give image sizes; `imgprep prepare` writes it from the packed "
            "images, or set it yourself: at most the smallest image side)")
    if result.channel is not None:
        say(f"manifest channels: AttributeNames={result.channel['AttributeNames']}")
        say(f"  ContentType={result.channel['ContentType']}  RecordWrapperType=RecordIO  InputMode=Pipe")
    return result


def _duplicates(dataset: Dataset, image_root: str | None, mode: str, threshold: int | None,
                storage: Store, say: Echo, shown: bool = False) -> dedup_mod.Duplicates | None:
    root = dataset.root or image_root
    if dataset.pixels is None and root is not None:
        from imgprep.errors import MissingPieceError
        from imgprep.requirements import require

        try:  # lists alone need no decoder: without Pillow only an explicit --dedup drop fails
            require("PIL")
        except MissingPieceError as exc:
            if mode == "drop":
                raise
            say(f"duplicates: not checked ({exc.message})")
            return None
    if dataset.pixels is not None:
        pixels = dataset.pixels

        def read(i: int) -> Any:
            return pixels[i]
    elif root is not None:

        def read(i: int) -> Any:
            return storage.read_bytes(join(root, dataset.paths[i]))
    else:
        say("duplicates: not checked (the images are not at hand; give the image root to check them)")
        return None
    from imgprep.splits.neardup import DEFAULT_THRESHOLD

    with _pass_progress(len(dataset), "duplicates", show=shown) as tick:
        def counted(i: int) -> Any:
            try:
                return read(i)
            finally:
                tick(1)

        return dedup_mod.find(len(dataset), counted,
                              threshold=DEFAULT_THRESHOLD if threshold is None else threshold)


@contextlib.contextmanager
def _pass_progress(total: int, label: str, *, show: bool) -> Iterator[Callable[[int], Any]]:
    """A labelled progress bar on stderr for one pass over the images (terminal only)."""
    if not (show and sys.stderr.isatty()):
        yield lambda _n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False, desc=label) as bar:
        yield bar.update


def _split_groups(dataset: Dataset, plan: SplitPlan | None, dups: dedup_mod.Duplicates, *, shuffle: bool,
                  seed: int) -> dict[str, np.ndarray]:
    """Split one image per duplicate group; its copies follow it (preset splits: copies move to it)."""
    if plan is None:
        return dedup_mod.regroup(make_splits(dataset, plan, shuffle=shuffle, seed=seed), dups)
    reps = dedup_mod.representatives(dups)
    labels = dataset.labels[reps]
    if dataset.multi_label:
        parts = split_multi(labels, plan)
    else:
        parts = split_single(labels, plan, [c.name for c in dataset.classes])
    return dedup_mod.expand({name: reps[idx] for name, idx in parts.items()}, dups)


def _say_duplicates(dataset: Dataset, splits: Mapping[str, np.ndarray], dups: dedup_mod.Duplicates, mode: str,
                    say: Echo) -> None:
    exact = len(dups.identical)
    grouped = sum(len(m) for m in dups.members.values())
    line = (f"duplicates: {exact} exact and {len(dups.pairs) - exact} near-duplicate pair(s); "
            f"{grouped} image(s) are copies of another")
    if dups.unreadable:
        line += f"; {dups.unreadable} image(s) could not be read for the check"
    if dups.small:
        line += f"; {dups.small} image(s) under 32 px checked for exact copies only"
    say(line)
    leaked = dedup_mod.leaks(splits, dups)
    where = {int(i): name for name, idx in splits.items() for i in idx.tolist()}
    if mode == "drop":
        say(f"  --dedup drop: every duplicate group is in one split ({len(leaked)} pairs across splits)")
    elif leaked:
        say(f"  {len(leaked)} pair(s) straddle splits (leaks); --dedup drop keeps each group in one split:")
    for i, j, d in (leaked if mode != "drop" else [])[:10]:
        how = "same bytes" if (i, j) in dups.identical else f"{d} bits apart"
        say(f"    {where[i]}/{dataset.paths[i]} ~ {where[j]}/{dataset.paths[j]} ({how})")


def packed_shape(spec: Any, dataset: Dataset) -> tuple[int, int, int] | None:
    """``(C, H, W)`` every packed image is known to have (or to exceed, for ``--resize``)."""
    channels = 1 if getattr(spec, "color", 1) == 0 else 3
    if getattr(spec, "size", None):
        width, height = spec.size
        return (channels, height, width)
    if getattr(spec, "resize", 0):
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


@dataclass
class PrepareResult:
    """The conversion plus one packing summary per split."""

    converted: ConvertResult
    packed: dict[str, Any] = field(default_factory=dict)


def prepare(
    kind: str,
    input: str,
    outdir: str,
    *,
    spec: Any,
    options: Any,
    image_root: str | None = None,
    echo: Echo | None = None,
    **convert_options: Any,
) -> PrepareResult:
    """:func:`convert`, then pack every split into ``OUTDIR/<split>.rec`` + ``.idx``.

    In-memory datasets (MNIST) are packed straight from their arrays (no image files);
    multi-label data is packed with its multi-hot labels in the record header.
    """
    from imgprep.packing.packer import pack

    if kind == "coco" and not image_root:
        raise UsageError("prepare coco needs --image-root (the local folder holding the images)")
    if kind == "manifest" and not (image_root or (convert_options.get("source_options") or {}).get("root")):
        raise UsageError("prepare manifest needs --root (the local copy of the images' S3 prefix)")
    channels = 1 if spec.color == 0 else 3
    convert_options.setdefault("storage", getattr(options, "storage", None))
    if convert_options["storage"] is None:
        from imgprep.storage.stores import Storage

        convert_options["storage"] = Storage()
    convert_options.setdefault("image_root", image_root)
    result = convert(
        kind,
        input,
        outdir,
        channels=channels,
        write_images=False,
        image_shape=lambda data: packed_shape(spec, data),
        echo=echo,
        **convert_options,
    )
    dataset = result.dataset
    source: Any
    if dataset.make_source is not None:
        source = dataset.make_source(channels=channels)
    else:
        source = image_root or dataset.root
        if not source:
            flag = "--root" if kind == "manifest" else "--image-root"
            raise UsageError(f"prepare {kind} needs {flag} (the local folder holding the images)")
    if dataset.multi_label and dataclasses.is_dataclass(options) and not getattr(options, "pack_label", True):
        options = dataclasses.replace(options, pack_label=True)
    out = PrepareResult(converted=result)
    say = echo or (lambda _line: None)
    note = reencode_note(spec, in_memory=dataset.make_source is not None)
    if note:
        say(note)
    for name, items in result.lists.items():
        summary = pack(items, source, join(outdir, name), spec, options)
        out.packed[name] = summary
        say(f"packed {name}: {summary.format()}")
    describe_packed(result, out.packed, spec, outdir, convert_options["storage"], say)
    return out


def reencode_note(spec: Any, *, in_memory: bool) -> str | None:
    """What prepare does to images when no transform was asked for (it re-encodes them)."""
    if in_memory or spec.pass_through or spec.resize or spec.size or spec.center_crop:
        return None
    return (f"no --resize or --size: every image is decoded and re-encoded as {spec.encoding.upper()} "
            f"(quality {spec.quality}) at its own size; --pass-through stores the files' bytes unchanged")


def describe_packed(result: ConvertResult, packed: Mapping[str, Any], spec: Any, outdir: str, storage: Store,
                    say: Echo) -> None:
    """Rewrite ``hyperparameters.json`` and ``classes.json`` from what was packed, and say how
    the records differ from the lists (:mod:`imgprep.packing.described`)."""
    from imgprep.packing.described import describe

    found = describe(result.dataset, result.splits, packed, spec, result.hyperparameters)
    if found.classes != result.classes:
        storage.write_text(join(outdir, "classes.json"), classmap.dumps(found.classes))
        result.classes = found.classes
    if found.hyperparameters != result.hyperparameters:
        storage.write_text(join(outdir, "hyperparameters.json"), hyperparams.dumps(found.hyperparameters))
        result.hyperparameters = found.hyperparameters
    if found.differences:
        say("the records differ from the lists; hyperparameters.json and classes.json describe the records:")
        for line in found.differences:
            say(f"  {line}")
    say("hyperparameters: " + ", ".join(f"{k}={v}" for k, v in result.hyperparameters.items()))
