"""Dataset -> lists, class map, hyperparameters and manifests (``convert``), then RecordIO (``prepare``).

One function per face: the CLI commands in :mod:`imgprep.cli.convert` only parse options and
call :func:`convert` / :func:`prepare`.  Every output is a pure function of the inputs, the
options and the seed, so a rerun produces byte-identical files.  The one time stamp in the
outputs, the manifests' ``creation-date``, follows this rule (see :func:`creation_date`):
``--creation-date`` if given, else ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention),
else the newest modification time among the input files the source read.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from collections.abc import Callable, Mapping, Sequence
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
    duplicates: dedup_mod.Groups | None = None
    dedup_summary: dedup_mod.Summary | None = None


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
    dedup_report: str | None = None,
    image_root: str | None = None,
) -> ConvertResult:
    """Load, split and write ``train.lst``/``val.lst``/…, ``classes.json``, ``hyperparameters.json``
    and (with ``manifest_prefix``) ``<split>.manifest`` under ``outdir`` (local or ``s3://``).

    ``channels``/``image_format`` apply to in-memory sources (MNIST), whose images are written
    under ``OUTDIR/images`` unless ``write_images`` is False; ``image_shape`` (a shape, or a
    function of the loaded dataset) overrides the shape taken from the data (``prepare``
    passes the packed size).  ``dedup`` (off, report, same-split) groups copies among the images
    first (read from the source, or from ``image_root`` when the source has no root: COCO) and
    reports the groups the split puts on both sides, or splits duplicate groups whole;
    ``dedup_report`` names a file (local or ``s3://``) that gets every group as JSON Lines.
    """
    dedup = dedup_mod.check_mode(dedup)
    if channels not in (1, 3):
        raise UsageError(f"channels must be 1 or 3, got {channels}")
    if seed < 0:
        raise UsageError(f"--seed must not be negative, got {seed}")
    require_for([input, outdir], decode=kind == "mnist" and write_images)
    if storage is None:
        from imgprep.storage.stores import Storage

        storage = Storage()
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
        dups = _duplicates(dataset, image_root, dedup, dedup_threshold, storage, say)
    if dedup == "same-split" and dups is not None and dups.grouped:
        splits = _split_groups(dataset, plan, dups, shuffle=shuffle, seed=seed)
    else:
        splits = make_splits(dataset, plan, shuffle=shuffle, seed=seed)
    result = ConvertResult(dataset=dataset, splits=splits, lists={}, duplicates=dups)
    if dups is not None:
        result.dedup_summary = _say_duplicates(dataset, splits, dups, dedup, dedup_report, storage, say)
        if dedup_report:
            result.outputs.append(dedup_report)

    image_root = dataset.root
    if dataset.pixels is not None and write_images:
        image_root = _write_mnist_images(dataset, outdir, channels, image_format, storage)
    result.image_root = image_root

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
        say("  (no image_shape: this source does not give image sizes and convert does not read the images; "
            "`imgprep prepare ... --resize N` knows it, or set it yourself: at most the smallest image side)")
    if result.channel is not None:
        say(f"manifest channels: AttributeNames={result.channel['AttributeNames']}")
        say(f"  ContentType={result.channel['ContentType']}  RecordWrapperType=RecordIO  InputMode=Pipe")
    return result


def _duplicates(dataset: Dataset, image_root: str | None, mode: str, threshold: int | None,
                storage: Store, say: Echo) -> dedup_mod.Groups | None:
    root = dataset.root or image_root
    if dataset.pixels is None and root is not None:
        from imgprep.errors import MissingPieceError
        from imgprep.requirements import require

        try:  # lists alone need no decoder: without Pillow only an explicit --dedup same-split fails
            require("PIL")
        except MissingPieceError as exc:
            if mode == "same-split":
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
    import sys

    from tqdm import tqdm

    from imgprep.splits.neardup import DEFAULT_THRESHOLD

    with tqdm(total=len(dataset), unit="img", desc="duplicates", leave=False,
              disable=not sys.stderr.isatty()) as bar:
        return dedup_mod.find(len(dataset), read, threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                              tick=bar.update)


def _split_groups(dataset: Dataset, plan: SplitPlan | None, dups: dedup_mod.Groups, *, shuffle: bool,
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


def _say_duplicates(dataset: Dataset, splits: Mapping[str, np.ndarray], dups: dedup_mod.Groups, mode: str,
                    report: str | None, storage: Store, say: Echo) -> dedup_mod.Summary:
    """The summary ``inspect`` prints too, the first leak groups, and the ``--dedup-report`` file."""
    names = list(splits)
    where = dedup_mod.split_of(len(dataset), list(splits.values()))
    summary, found = dedup_mod.findings(dups, where, dataset.labels)
    for line in summary.lines(names):
        say(line)

    def ref(i: int) -> dict[str, Any]:
        return {"split": names[where[i]] if where[i] >= 0 else None, "id": i, "path": dataset.paths[i]}

    if mode == "same-split":
        say("  --dedup same-split: every duplicate group is in one split")
    flagged = [f for f in found if f.leak or f.conflict]
    shown = flagged[:10]
    for f in shown:
        what = ("LEAK" if f.leak else "") + (" CONFLICT" if f.conflict else "")
        refs = ", ".join(f"{r['split']}/{r['path']}" for r in map(ref, f.rows[:4]))
        more = f" and {len(f.rows) - 4} more" if len(f.rows) > 4 else ""
        say(f"  {what.strip()}: {len(f.rows)} images{' (identical)' if f.exact else ''}: {refs}{more}")
    if len(flagged) > len(shown):
        say(f"  ... and {len(flagged) - len(shown):,} more group(s)"
            + ("" if report else "; --dedup-report FILE lists every group"))
    if report:
        storage.write_text(report, "".join(dedup_mod.report_lines(found, ref)))
    return summary


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
    for name, items in result.lists.items():
        summary = pack(items, source, join(outdir, name), spec, options)
        out.packed[name] = summary
        say(f"packed {name}: {summary.format()}")
    return out
