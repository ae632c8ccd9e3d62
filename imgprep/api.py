"""The Python API: the CLI's commands as functions, for training code and notebooks.

    import imgprep
    lists = imgprep.convert("folders", "photos/", "lists/", split="train=0.8,val=0.2", leaf_classes=True)
    summary = imgprep.pack("lists/train.lst", root="photos/", output="out/train", resize=256)
    done = imgprep.prepare("mnist", "fashion-mnist/", "out/", color=0, encoding="png")
    report = imgprep.verify("out/train")
    findings = imgprep.inspect("out/")

Every function takes the CLI command's options as keywords, named as on the command line with
underscores (``--leaf-classes`` is ``leaf_classes=``), or the typed objects the CLI builds from
them (:class:`ConvertOptions`, :class:`TransformSpec`, :class:`PackOptions`); returns a typed
result; and raises :class:`imgprep.errors.ImgprepError` subclasses for bad input (an unknown
keyword is a :class:`TypeError`).  S3 paths go through ``storage`` (an :class:`imgprep.Storage`)
or ``storage_options`` (its options as a dict); one Store is built here when neither is given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from imgprep.convert import ConvertOptions, ConvertResult, ImageOutput
from imgprep.convert import convert as _convert
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.inspect.analyse import Findings
from imgprep.packing.packer import PackOptions, PackSummary
from imgprep.packing.packer import pack as _pack
from imgprep.plan import PrepareResult
from imgprep.plan import prepare as _prepare
from imgprep.sources.options import SourceOptions
from imgprep.splits import lists as _lists
from imgprep.storage.base import Store
from imgprep.storage.stores import Storage
from imgprep.verify.report import Report

__all__ = ["Storage", "convert", "inspect", "pack", "prepare", "read_list", "read_lists", "verify", "write_lst"]

PathLike = str | os.PathLike[str]
Echo = Callable[[str], None]

_SPEC_FIELDS = {f.name for f in dataclasses.fields(TransformSpec)}
_PACK_FIELDS = {f.name for f in dataclasses.fields(PackOptions)} - {"storage"}
_CONVERT_FIELDS = ({f.name for f in dataclasses.fields(ConvertOptions)} - {"source"}) | {
    f.name for f in dataclasses.fields(SourceOptions)
}


def convert(
    kind: str,
    input: PathLike,
    output: PathLike,
    options: ConvertOptions | None = None,
    *,
    channels: int = 3,
    image_format: str = "png",
    echo: Echo | None = None,
    storage: Store | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> ConvertResult:
    """``imgprep convert``: lists, ``classes.json``, ``hyperparameters.json`` (and manifests) in ``output``.

    Keywords are the CLI's dataset options: ``split`` (``"train=0.8,val=0.2"`` or pairs),
    ``train_per_class``, ``stratify``, ``shuffle``, ``seed``, ``dedup``, ``dedup_threshold``, ``dedup_report``,
    ``manifest_prefix``, ``label_format``, ``attribute``, ``job_name``, ``creation_date``, and the
    per-source ones (``extensions``, ``class_depth``, ``leaf_classes``, ``classes``,
    ``drop_clutter``, ``categories``, ``include_crowd``, ``min_area``, ``keep_empty``,
    ``variant``, ``root``, ``source_attribute``, ``source_label_format``), and
    ``follow_links_outside_root`` (list files reached through symlinks leading out of the image
    root; :func:`prepare` also packs them, :func:`pack` takes it too).  ``channels`` and
    ``image_format`` are MNIST's image files; ``echo`` (e.g. ``print``) receives the summary lines.
    """
    options = _convert_options(options, keywords)
    store = _store(storage, storage_options)
    images = ImageOutput(channels=channels, image_format=image_format)
    return _convert(kind, os.fspath(input), os.fspath(output), options, storage=store, echo=echo, images=images)


def prepare(
    kind: str,
    input: PathLike,
    output: PathLike,
    *,
    image_root: PathLike | None = None,
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    convert_options: ConvertOptions | None = None,
    echo: Echo | None = None,
    storage: Store | None = None,
    storage_options: Mapping[str, Any] | None = None,
    output_format: str = "recordio",
    **keywords: Any,
) -> PrepareResult:
    """``imgprep prepare``: :func:`convert`, then every split packed into ``output/<split>.rec`` + ``.idx``
    (``output_format="images"``: image channels ``output/train/`` ... with ``train_lst/train.lst`` ...).

    Keywords are :func:`convert`'s dataset options and :func:`pack`'s transform and run options
    (``resize=256``, ``color=0``, ``num_workers=8`` ...); ``image_root`` is the folder or ``s3://``
    prefix holding COCO's images.  The objects, for those who build them: ``spec``
    (:class:`TransformSpec`) and ``options`` (:class:`PackOptions`) as in :func:`pack`,
    ``convert_options`` (:class:`ConvertOptions`).  Progress bars are off unless ``progress=True``.
    """
    convert_keywords = {k: keywords.pop(k) for k in list(keywords) if k in _CONVERT_FIELDS - _PACK_FIELDS}
    if "follow_links_outside_root" in keywords:  # both steps' switch: listing and packing
        convert_keywords["follow_links_outside_root"] = keywords["follow_links_outside_root"]
    dataset_options = _convert_options(convert_options, convert_keywords)
    store = _store(storage, storage_options, options.storage if options is not None else None)
    spec, options = _pack_settings(spec, options, keywords, store)
    return _prepare(
        kind, os.fspath(input), os.fspath(output), options=dataset_options, spec=spec, pack_options=options,
        storage=store, image_root=os.fspath(image_root) if image_root else None, echo=echo,
        output_format=output_format,
    )


def pack(
    lists: PathLike | Sequence[PathLike] | Sequence[LstItem],
    root: Any,
    output: PathLike,
    spec: TransformSpec | None = None,
    options: PackOptions | None = None,
    *,
    storage: Store | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> PackSummary:
    """``imgprep pack``: lists (paths, or ``LstItem`` objects) into RecordIO at ``output``.

    Keywords are the CLI's options: transform ones (``resize``, ``size=(W, H)``, ``fit``,
    ``center_crop``, ``quality``, ``encoding``, ``color``, ``pass_through``, ``max_pixels``) and
    run ones (``num_workers``, ``executor``, ``shard_records``, ``shard_size``, ``strict``,
    ``pack_label``, ``quiet``, ``native``, ``resume``, ``checkpoint_bytes``); ``storage`` (a
    :class:`Storage`) or ``storage_options`` (a dict of its options: ``endpoint_url``,
    ``part_size``, ``max_concurrency``, ...; unknown names are errors).  Progress bars are off
    unless ``progress=True``.
    """
    from imgprep.splits.stream import ListStream

    store = _store(storage, storage_options, options.storage if options is not None else None)
    spec, options = _pack_settings(spec, options, keywords, store)
    items: Any
    if isinstance(lists, str | os.PathLike):
        items = ListStream([lists], options.storage)
    elif lists and all(isinstance(x, LstItem) for x in lists):
        items = list(lists)
    else:
        items = ListStream(lists, options.storage)  # type: ignore[arg-type]
    return _pack(items, root, os.fspath(output), spec, options)


def verify(
    path: PathLike,
    *,
    num_classes: int | None = None,
    against: PathLike | Sequence[LstItem] | None = None,
    num_workers: int | None = None,
    progress: bool = False,
    max_skipped: int | str | None = None,
    train: bool | None = None,
    channel_settings: bool = False,
    storage: Store | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Report:
    """``imgprep verify``: read every record of a ``.rec``, shard prefix or ``.dataset.json``, and
    hold the ``hyperparameters.json``/``classes.json`` beside it to them (the pre-training check).

    Returns the report; problems in the data are in ``report.problems`` (``report.ok`` is False),
    not raised: an unreadable input or a bad argument raises.  ``against`` is a ``.lst`` path or
    its items: the records must be exactly those entries.  ``max_skipped`` (a count or ``"1%"``)
    makes a pack that skipped more images a problem; ``train`` says whether these records are the
    training channel (default: named ``train*``); ``channel_settings`` fills ``report.channel``
    with the SageMaker ``InputDataConfig`` entry.
    """
    from imgprep import outputs

    store = _store(storage, storage_options)
    name = ""
    items: Sequence[LstItem] | None = None
    if isinstance(against, str | os.PathLike):
        name = os.fspath(against)
        items = _lists.read_lists([name], store)
    elif against is not None:
        items = list(against)
    where = os.fspath(path)
    return outputs.opening(where, store).verify(where, store, num_classes=num_classes, against=items,
                                                 against_name=name, workers=num_workers, progress=progress,
                                                 max_skipped=max_skipped, train=train,
                                                 channel_settings=channel_settings)


def inspect(
    path: PathLike,
    *,
    root: PathLike | None = None,
    threshold: int | None = None,
    num_workers: int | None = None,
    html: PathLike | None = None,
) -> Findings:
    """``imgprep inspect``: class balance, image sizes, exact and near duplicates, leaks across splits.

    ``findings.to_json()`` is the CLI's ``--json``; ``html`` also writes the CLI's ``--html`` page.
    """
    from imgprep import outputs

    if html is not None:
        from imgprep.requirements import require

        require("PIL")  # the page's thumbnails: say so before the scan, not after it
    where = os.fspath(path)
    findings = outputs.opening(where, Storage()).inspect(where, root=os.fspath(root) if root else None,
                                                          threshold=threshold, workers=num_workers)
    if html is not None:
        from imgprep.inspect.html import write_html

        write_html(findings, os.fspath(html))
    return findings


def _store(storage: Store | None, storage_options: Mapping[str, Any] | None, held: Store | None = None) -> Store:
    """The run's Store: the one given, one built from ``storage_options``, the one ``PackOptions``
    already holds, or one with default settings."""
    if storage is not None and storage_options is not None:
        raise TypeError("give storage or storage_options, not both")
    if storage is not None:
        return storage
    if storage_options is not None:
        return Storage.from_options(**storage_options)
    return held or Storage()


def _convert_options(options: ConvertOptions | None, keywords: dict[str, Any]) -> ConvertOptions:
    if options is not None:
        if keywords:
            raise TypeError(f"give options or keywords, not both (got {', '.join(sorted(keywords))})")
        return options
    return ConvertOptions.from_keywords(**keywords)


def _pack_settings(
    spec: TransformSpec | None, options: PackOptions | None, keywords: dict[str, Any], storage: Store
) -> tuple[TransformSpec, PackOptions]:
    """The transform and the run options from keywords (or the objects given), with the run's Store."""
    unknown = set(keywords) - _SPEC_FIELDS - _PACK_FIELDS
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if spec is None:
        spec = TransformSpec(**{k: v for k, v in keywords.items() if k in _SPEC_FIELDS})
    if options is None:
        run = {k: v for k, v in keywords.items() if k in _PACK_FIELDS}
        run.setdefault("progress", False)
        options = PackOptions(**run)
    return spec, dataclasses.replace(options, storage=storage)


def read_list(uri: str | os.PathLike[str], storage: Store | None = None) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``; ``storage`` defaults to :class:`Storage`)."""
    return _lists.read_list(uri, storage or Storage())


def read_lists(uris: Sequence[str | os.PathLike[str]], storage: Store | None = None) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    return _lists.read_lists(uris, storage or Storage())


def write_lst(uri: str | os.PathLike[str], items: Sequence[LstItem], storage: Store | None = None) -> None:
    """Write a ``.lst`` atomically (local: temporary name then rename; S3: one PUT)."""
    _lists.write_lst(uri, items, storage or Storage())
