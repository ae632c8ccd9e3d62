"""Dataset -> lists, class map, hyperparameters and manifests: :func:`convert` (load -> split -> write).

The faces (the CLI, :mod:`imgprep.api`, the Processing job) build one :class:`ConvertOptions` and
one Store and call :func:`convert`; ``prepare`` adds packing on top (:mod:`imgprep.plan`).  Every
output is a pure function of the inputs, the options and the seed, so a rerun produces
byte-identical files.  The one time stamp in the outputs, the manifests' ``creation-date``,
follows this rule (see :func:`creation_date`): ``--creation-date`` if given, else
``SOURCE_DATE_EPOCH`` (the reproducible-builds convention), else the newest modification time
among the input files the source read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.errors import UsageError
from imgprep.formats import classmap, hyperparams, typecheck
from imgprep.formats import manifest as manifest_format
from imgprep.formats.display import Messages, cap, cells, ljust, messages
from imgprep.formats.lst import LstItem, dumps
from imgprep.layout import prepared
from imgprep.requirements import require_for
from imgprep.sources import registry
from imgprep.sources.inside import keep_inside
from imgprep.sources.loaded import Dataset
from imgprep.sources.options import SourceOptions
from imgprep.sources.registry import Kind
from imgprep.splits import dedup as dedup_mod
from imgprep.splits.stratify import SplitPlan, check_feasible, parse_split, split_multi, split_single
from imgprep.storage.base import Store, join
from imgprep.storage.probe import check_access
from imgprep.storage.roots import RootGuard

Echo = Callable[[str], None]


@dataclass(frozen=True)
class ConvertOptions:
    """``convert``'s options, named as on the command line (``creation_date`` is ``--creation-date``).

    Built once at a face (CLI, API, Processing job) and passed down as one object.
    """

    split: str | Sequence[tuple[str, float]] | None = None
    train_per_class: int | None = None
    stratify: bool = True
    shuffle: bool = True
    seed: int = 0
    dedup: str = "report"
    dedup_threshold: int | None = None
    dedup_report: str | None = None  # local or s3:// file for every duplicate group (JSON Lines)
    manifest_prefix: str | None = None
    label_format: str = "multi-hot"
    attribute: str = "class"
    job_name: str | None = None
    creation_date: str | None = None
    # list (and, in prepare, pack) files reached through symlinks leading out of the image root
    follow_links_outside_root: bool = False
    source: SourceOptions = field(default_factory=SourceOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dedup", dedup_mod.check_mode(self.dedup))  # old names -> current ones
        # Values from Python are refused where the CLI's parsers would refuse them.
        object.__setattr__(self, "seed", typecheck.integer("seed", self.seed))
        for name in ("train_per_class", "dedup_threshold"):
            object.__setattr__(self, name, typecheck.integer(name, getattr(self, name), optional=True))
        for name in ("stratify", "shuffle", "follow_links_outside_root"):
            typecheck.flag(name, getattr(self, name))
        if self.seed < 0:
            raise UsageError(f"--seed must not be negative, got {self.seed}")

    @classmethod
    def from_keywords(cls, **keywords: Any) -> ConvertOptions:
        """The CLI's dataset options as keywords (``split=``, ``leaf_classes=``, ``categories=`` ...);
        an unknown name is a :class:`TypeError`, like any function's."""
        own = {f.name for f in dataclasses.fields(cls)} - {"source"}
        per_source = {f.name for f in dataclasses.fields(SourceOptions)}
        unknown = set(keywords) - own - per_source
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        source = SourceOptions(**{k: v for k, v in keywords.items() if k in per_source})
        return cls(**{k: v for k, v in keywords.items() if k in own}, source=source)


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

    Defaults: data with its own split -> that split; otherwise the kind's default split
    (Caltech: 60 training images per class, the classic protocol; most: train=0.8,val=0.2).
    """
    fractions = parse_split(split) if isinstance(split, str) else (tuple(split) if split else None)
    if fractions is None and train_per_class is None:
        if dataset.preset:
            return None
        default = registry.get(dataset.kind).default_split
        fractions, train_per_class = default.fractions, default.train_per_class
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
    # --dedup same-split in prepare: the pass's rows as a local fingerprint file in image order
    # (a temporary, removed by the caller), which the pack writes in record order
    pass_prints: str | None = None
    # (target, text) of the lists, class map, manifests and hyperparameters, in the order they are
    # written (hyperparameters.json last); not yet written when convert was asked to defer them.
    files: list[tuple[str, str]] = field(default_factory=list)

    def write_files(self, storage: Store) -> None:
        for target, text in self.files:
            storage.write_text(target, text)


def count_table(dataset: Dataset, splits: Mapping[str, np.ndarray], full: str | None = None) -> list[str]:
    """Per-class counts per split (positives per label for multi-label data), as text lines: the
    first :data:`TABLE_ROWS` classes and a count of the rest (all of them in ``full``)."""
    names = list(splits)
    counts = {s: dataset.class_counts(idx) for s, idx in splits.items()}
    width = max([cells(c.name) for c in dataset.classes] + [5])  # terminal cells: NFD names line up
    head = f"{'index':>5}  {ljust('class', width)}" + "".join(f"  {s:>8}" for s in names)
    rows = [f"{i:>5}  {ljust(c.name, width)}" + "".join(f"  {int(counts[s][i]):>8}" for s in names)
            for i, c in enumerate(dataset.classes)]
    total = f"{'':>5}  {ljust('images', width)}" + "".join(f"  {len(splits[s]):>8}" for s in names)
    return [head, *cap(rows, TABLE_ROWS, what="classes", full=full), total]


def _write_mnist_images(
    dataset: Dataset, outdir: str, channels: int, encoding: str, storage: Store
) -> str:
    """Encode every in-memory image once into ``OUTDIR/images/<class>/...`` (lossless PNG or JPEG)."""
    import io

    from PIL import Image

    pixels = dataset.pixels
    if pixels is None:
        raise UsageError("this dataset has no in-memory images to write")
    root = prepared.images_folder(outdir)
    fmt = "PNG" if encoding == "png" else "JPEG"
    params: dict[str, Any] = {"compress_level": 6} if fmt == "PNG" else {"quality": 95}
    for i, rel in enumerate(dataset.paths):
        img = Image.fromarray(pixels[i], "L")
        if channels == 3:
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, fmt, **params)
        storage.write_bytes(join(root, rel), buf.getvalue())  # each file whole, under its name, or not at all
    return root


TABLE_ROWS = 40  # classes shown in the printed table; classes.json holds every count


@dataclass(frozen=True)
class ConvertRequest:
    """What a conversion is asked to do, built by a face (the CLI, the API) or by prepare; the
    Store and the echo travel beside it.  ``image_root``: where the images are when the source does
    not say (COCO), for the duplicate check."""

    kind: str
    input: str
    outdir: str
    options: ConvertOptions
    image_root: str | None = None


def convert(
    request: ConvertRequest,
    *,
    storage: Store,
    echo: Echo | None = None,
    images: ImageOutput | None = None,
    defer_writes: bool = False,
    check_splits: Callable[[Dataset, dict[str, np.ndarray]], None] | None = None,
    progress: bool | None = None,
    after: AfterPass | None = None,
) -> ConvertResult:
    """Load, split and write ``train.lst``/``val.lst``/…, ``classes.json``, ``hyperparameters.json``
    and (with ``options.manifest_prefix``) ``<split>.manifest`` under ``outdir`` (local or ``s3://``).

    ``images`` says how in-memory images (MNIST) are written and which shape the hyperparameters
    announce (see :class:`ImageOutput`).  ``options.dedup`` (off, report, same-split) groups copies
    among the images first (read from the source, or from ``image_root`` when the source has no
    root: COCO) and reports the groups the split puts on both sides, or splits duplicate groups
    whole; ``options.dedup_report`` gets every group as JSON Lines.  ``defer_writes`` leaves the
    lists, class map, manifests and hyperparameters in ``result.files`` for the caller to write
    (``prepare`` writes them once every split is packed: its commit point).  ``check_splits``
    (prepare: output names, ``--resume``) sees the splits before any image is read (see :func:`split`).
    ``progress`` chooses the duplicate pass's meter as ``--progress`` does pack's (:mod:`imgprep.layout.meter`).
    ``after`` (``prepare``): what becomes of the duplicate pass (:class:`AfterPass`).
    """
    kind, input, outdir, options, image_root = (request.kind, request.input, request.outdir, request.options,
                                                request.image_root)
    images = images or ImageOutput()
    say = messages(echo)  # a caller's Messages (prepare) prints the warnings and summary itself
    source = registry.get(kind)
    require_for(storage.clients(input) + storage.clients(outdir), decode=source.writes_images and images.write)
    # fail before the work: an s3:// output or input that cannot be used is one line, now
    check_access(storage, writes=[outdir.rstrip("/") + "/"], reads=[input, image_root])
    dataset = load(source, input, options, images)
    # one policy for the lists, the duplicate check and pack: a file pack would refuse is not listed
    listed_root = dataset.root or image_root
    keep_inside(dataset, storage.local_path(listed_root) if listed_root else None,
                follow_outside=options.follow_links_outside_root)
    after = after or AfterPass()
    kept: list[str] = []
    splits, dups = split(dataset, options, storage=storage, image_root=image_root, say=say, check_splits=check_splits,
                         stored=images.stored, progress=progress, defer_report=after.defer_report,
                         keep=kept if after.keep_prints else None)
    if options.dedup == "same-split" and check_splits is not None:
        check_splits(dataset, splits)
    result = write(dataset, splits, outdir, options, images=images, storage=storage, say=say, defer=defer_writes)
    result.duplicates = dups
    result.pass_prints = kept[0] if kept else None
    if dups is not None and options.dedup_report:
        result.outputs.append(options.dedup_report)
    if say is not echo:
        say.flush()
    return result


@dataclass(frozen=True)
class AfterPass:
    """What ``prepare`` asks of the duplicate pass.  ``defer_report``: with ``--dedup report`` no
    pass runs here; the pack workers fingerprint what they store and the caller reports with
    :func:`report_duplicates`.  ``keep_prints``: the pass's rows are kept as ``result.pass_prints``
    (see :class:`ConvertResult`), for the pack to write."""

    defer_report: bool = False
    keep_prints: bool = False


@dataclass(frozen=True)
class ImageOutput:
    """In-memory images (MNIST): written as ``image_format`` files with ``channels`` channels under
    ``OUTDIR/images`` unless ``write`` is False; ``shape`` (a shape, or a function of the loaded
    dataset) overrides the ``image_shape`` hyperparameter taken from the data (``prepare`` gives
    the packed size)."""

    channels: int = 3
    image_format: str = "png"
    write: bool = True
    shape: tuple[int, int, int] | Callable[[Dataset], tuple[int, int, int] | None] | None = None
    # prepare: the image pack will store, from an image file's bytes; the duplicate check fingerprints
    # that, so inspect of the packed output compares the very same bytes (one answer before and after)
    stored: Callable[[bytes], bytes] | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {self.channels}")


def load(kind: Kind, input: str, options: ConvertOptions, images: ImageOutput) -> Dataset:
    """The dataset; a bad manifest option fails before the input is read."""
    if options.manifest_prefix is not None:
        _manifest_options(kind.name, options, created="")
    return kind.load(
        input, options.source,
        # in-memory images are named after the files convert writes; a walk lists what links lead to
        encoding=images.image_format if kind.writes_images else None,
        follow_links_outside_root=True if options.follow_links_outside_root and kind.walks_tree else None,
    )


def split(  # noqa: PLR0913 - the duplicate pass's settings: one object when convert and prepare part ways
    dataset: Dataset, options: ConvertOptions, *, storage: Store, image_root: str | None, say: Echo,
    check_splits: Callable[[Dataset, dict[str, np.ndarray]], None] | None = None,
    stored: Callable[[bytes], bytes] | None = None, progress: bool | None = None, defer_report: bool = False,
    keep: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], dedup_mod.Groups | None]:
    """Image indices per split (duplicate groups kept whole with ``--dedup same-split``), and the groups.
    ``check_splits`` sees the splits before any image is read (after the duplicates with same-split)."""
    plan = make_plan(
        dataset,
        split=options.split,
        train_per_class=options.train_per_class,
        stratify=options.stratify,
        shuffle=options.shuffle,
        seed=options.seed,
    )
    if plan is not None:  # from the labels alone: a split that cannot be made fails before any image is read
        check_feasible(dataset.labels, plan, [c.name for c in dataset.classes], multi_label=dataset.multi_label)
    if dataset.num_classes == 1:
        dataset.notes.append("only one class: a classifier needs at least two (check the layout options)")
    warn = getattr(say, "warn", say)  # notes are warnings: printed after the tables
    for note in dataset.notes:
        warn(f"{dataset.origin}: {note}")
    if options.dedup != "same-split" and check_splits is not None:  # the splits do not wait for the duplicates
        check_splits(dataset, make_splits(dataset, plan, shuffle=options.shuffle, seed=options.seed))
    dups = None
    if options.dedup != "off" and not (defer_report and options.dedup == "report"):
        shown = getattr(say, "echo", say) is not None  # a silent caller sees no bar unless it asks (progress=True)
        dups = _duplicates(dataset, image_root, options.dedup, options.dedup_threshold, storage, warn,
                           follow_outside=options.follow_links_outside_root, stored=stored,
                           progress=progress if progress is not None or shown else False, keep=keep)
    if options.dedup == "same-split" and dups is not None and dups.grouped:
        splits = _split_groups(dataset, plan, dups, shuffle=options.shuffle, seed=options.seed)
    else:
        splits = make_splits(dataset, plan, shuffle=options.shuffle, seed=options.seed)
    if dups is not None:
        _say_duplicates(dataset, splits, dups, options.dedup, options.dedup_report, storage, warn)
    return splits, dups


def write(
    dataset: Dataset,
    splits: dict[str, np.ndarray],
    outdir: str,
    options: ConvertOptions,
    *,
    images: ImageOutput,
    storage: Store,
    say: Echo,
    defer: bool = False,
) -> ConvertResult:
    """Write the images (in-memory sources), lists, class map, manifests and hyperparameters (last);
    with ``defer`` the files are left in ``result.files`` (see :func:`convert`)."""
    result = ConvertResult(dataset=dataset, splits=splits, lists={})
    result.image_root = dataset.root
    if dataset.pixels is not None and images.write:
        result.image_root = _write_mnist_images(dataset, outdir, images.channels, images.image_format, storage)
    for name, idx in splits.items():
        result.lists[name] = dataset.items(idx.tolist())
        result.files.append((prepared.list_name(outdir, name), dumps(result.lists[name])))
    result.classes = classmap.build(
        kind=dataset.kind,
        classes=dataset.classes,
        multi_label=dataset.multi_label,
        split_counts={name: dataset.class_counts(idx) for name, idx in splits.items()},
        split_sizes={name: len(idx) for name, idx in splits.items()},
    )
    result.files.append((prepared.classes_name(outdir), classmap.dumps(result.classes)))
    if options.manifest_prefix is not None:
        created = creation_date(options.creation_date, dataset)
        _add_manifests(result, outdir, _manifest_options(dataset.kind, options, created=created))
    result.hyperparameters = _hyperparameters(dataset, splits, images)
    result.files.append((prepared.hyperparameters_name(outdir), hyperparams.dumps(result.hyperparameters)))
    result.outputs += [target for target, _ in result.files]
    if not defer:
        result.write_files(storage)
    _summarise(result, outdir, messages(say), written=not defer)
    return result


def _manifest_options(kind: str, options: ConvertOptions, *, created: str) -> manifest_format.ManifestOptions:
    return manifest_format.ManifestOptions(
        prefix=options.manifest_prefix or "",
        attribute=options.attribute,
        label_format=options.label_format,
        job_name=options.job_name or f"imgprep-{kind}",
        creation_date=created,
    )


def _hyperparameters(dataset: Dataset, splits: dict[str, np.ndarray], images: ImageOutput) -> dict[str, str]:
    shape = images.shape(dataset) if callable(images.shape) else images.shape
    if shape is None and dataset.image_shape is not None:
        _, h, w = dataset.image_shape
        shape = (images.channels, h, w)
    if shape is None and dataset.min_side:
        side = min(hyperparams.DEFAULT_SIDE, dataset.min_side)
        shape = (3, side, side)
    train = splits.get("train", next(iter(splits.values())))
    return hyperparams.hyperparameters(
        num_classes=dataset.num_classes,
        num_training_samples=len(train),
        multi_label=dataset.multi_label,
        shape=shape,
        train_labels=dataset.labels[train] if dataset.multi_label else None,
    )


def _add_manifests(result: ConvertResult, outdir: str, options: manifest_format.ManifestOptions) -> None:
    dataset = result.dataset
    names = [c.name for c in dataset.classes]
    for name, items in result.lists.items():
        records = (
            manifest_format.record(it.path, it.labels, names, multi_label=dataset.multi_label, options=options)
            for it in items
        )
        result.files.append((prepared.manifest_name(outdir, name), manifest_format.dumps(records)))
    result.channel = manifest_format.channel_settings(multi_label=dataset.multi_label, options=options)


def _summarise(result: ConvertResult, outdir: str, say: Messages, *, written: bool) -> None:
    """The table and the files as they are written; the hyperparameters and channel settings go
    to the summary, printed last (after the warnings)."""
    dataset, splits = result.dataset, result.splits
    what = "positive labels" if dataset.multi_label else "images"
    say(f"{dataset.num_classes} classes, {len(dataset)} images; {what} per class and split:")
    for line in count_table(dataset, splits, full=prepared.classes_name(outdir)):
        say(line)
    if result.image_root is not None and dataset.pixels is not None and result.image_root != dataset.root:
        kind = os.path.splitext(dataset.paths[0])[1].lstrip(".").upper() + " " if len(dataset) else ""
        say(f"wrote {len(dataset):,} {kind}images under {result.image_root} (give `--root {result.image_root}` "
            "to imgprep pack)")
    for target in result.outputs if written else ():
        say(f"wrote {target}")
    say.summary(hyperparameters_line(result.hyperparameters))
    if "image_shape" not in result.hyperparameters:
        say.summary("  (no image_shape: the lists do not give image sizes; `imgprep prepare` writes it from the "
                    "packed images, or set it yourself: at most the smallest image side)")
    if result.channel is not None:
        say.summary(f"manifest channels: AttributeNames={result.channel['AttributeNames']}")
        say.summary(f"  ContentType={result.channel['ContentType']}  RecordWrapperType=RecordIO  InputMode=Pipe")


def hyperparameters_line(params: Mapping[str, str]) -> str:
    return "hyperparameters: " + ", ".join(f"{k}={v}" for k, v in params.items())


# Issue 29's pass, landed last: its settings become one object when the pass moves to the pack workers.
def _duplicates(dataset: Dataset, image_root: str | None, mode: str, threshold: int | None,  # noqa: PLR0913
                storage: Store, say: Echo, follow_outside: bool = False,
                stored: Callable[[bytes], bytes] | None = None,
                progress: bool | None = None, keep: list[str] | None = None) -> dedup_mod.Groups | None:
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
    elif root is not None and (folder := storage.local_path(root)) is not None:
        # read as pack reads (storage.roots): a FIFO, a device or a link out is refused, not read
        guard = RootGuard(folder, follow_outside=follow_outside)

        def read(i: int) -> Any:
            return guard.read(os.path.join(folder, dataset.paths[i]))
    elif root is not None:

        def read(i: int) -> Any:
            return storage.read_bytes(join(root, dataset.paths[i]))
    else:
        say("duplicates: not checked (the images are not at hand; give the image root to check them)")
        return None
    from imgprep.splits.neardup import DEFAULT_THRESHOLD

    with _pass_progress(len(dataset), "duplicates", progress=progress) as tick:
        def counted(i: int) -> Any:
            try:
                item = read(i)
                return stored(item) if stored is not None and isinstance(item, bytes) else item
            finally:
                tick(1)

        return _find(len(dataset), counted, DEFAULT_THRESHOLD if threshold is None else threshold, storage, keep)


def _find(n: int, read: Callable[[int], Any], threshold: int, storage: Store,
          keep: list[str] | None) -> dedup_mod.Groups:
    """The pass; ``keep``: its rows spooled and published as a local file, whose path is appended."""
    if keep is None:
        return dedup_mod.find(n, read, threshold=threshold)
    from imgprep.splits.prints_spool import SpooledPrints

    prints = SpooledPrints()
    try:
        groups = dedup_mod.find(n, read, threshold=threshold, prints=prints)
    except BaseException:
        prints.spool.close()
        raise
    keep.append(prints.publish(storage))
    return groups


@contextlib.contextmanager
def _pass_progress(total: int, label: str, *, progress: bool | None) -> Iterator[Callable[[int], Any]]:
    """One pass over the images: a bar on a terminal, lines elsewhere (:mod:`imgprep.layout.meter`);
    ``progress``: True lines, False nothing, None as the stream allows."""
    from imgprep.layout.meter import meter

    with meter(label, total, "img", progress=progress, leave=False) as bar:
        yield bar.update


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


def duplicate_pass(result: ConvertResult, request: ConvertRequest, *, storage: Store, say: Echo,
                   stored: Callable[[bytes], bytes] | None = None, progress: bool | None = None) -> None:
    """The duplicate pass :func:`convert` deferred, run now and reported (``prepare`` when some images
    are in no split, so its pack would not fingerprint them all)."""
    options = request.options
    dups = _duplicates(result.dataset, request.image_root, options.dedup, options.dedup_threshold, storage,
                       getattr(say, "warn", say), follow_outside=options.follow_links_outside_root, stored=stored,
                       progress=progress)
    if dups is not None:
        report_duplicates(result, dups, options, storage, say)


def report_duplicates(result: ConvertResult, dups: dedup_mod.Groups, options: ConvertOptions, storage: Store,
                      say: Echo) -> None:
    """The duplicate report of a conversion whose groups were found later (``prepare``: from the
    fingerprints its pack workers took), as :func:`convert` prints it."""
    result.duplicates = dups
    _say_duplicates(result.dataset, result.splits, dups, options.dedup, options.dedup_report, storage,
                    getattr(say, "warn", say))
    if options.dedup_report:
        result.outputs.append(options.dedup_report)


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
        kind = " (identical)" if f.exact else " (look-alike: too little detail to tell)" if f.lookalike else ""
        say(f"  {what.strip()}: {len(f.rows)} images{kind}: {refs}{more}")
    if len(flagged) > len(shown):
        say(f"  ... and {len(flagged) - len(shown):,} more group(s)"
            + ("" if report else "; --dedup-report FILE lists every group"))
    if report:
        storage.write_text(report, "".join(dedup_mod.report_lines(found, ref)))
    return summary
