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

from imgprep.convert import ConvertOptions, ConvertRequest, ConvertResult, ImageOutput
from imgprep.convert import convert as _convert
from imgprep.formats import typecheck
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.inspect.analyse import Findings
from imgprep.options import OPTIONS, check, fields
from imgprep.packing.packer import PackOptions, PackSummary
from imgprep.packing.packer import pack as _pack
from imgprep.plan import PrepareRequest, PrepareResult
from imgprep.plan import prepare as _prepare
from imgprep.splits import lists as _lists
from imgprep.storage.base import Store
from imgprep.storage.stores import Storage
from imgprep.verify.report import Report

__all__ = ["Storage", "convert", "inspect", "pack", "prepare", "read_list", "read_lists", "verify", "write_lst"]

PathLike = str | os.PathLike[str]
Echo = Callable[[str], None]

# The API's keywords are the options' fields, checked against the same declarations as the CLI's.
_CONVERT = fields("dataset", "source", "links")
_SPEC = fields("transform")
_RUN = fields("run", "links")
_IMAGES = {"channels": OPTIONS["channels"], "image_format": OPTIONS["image_format"]}
_VERIFY = {k: OPTIONS[k] for k in ("num_classes", "num_workers", "channel_settings")}
_INSPECT = {"threshold": OPTIONS["threshold"], "num_workers": OPTIONS["num_workers"]}
_FORMAT = {"output_format": OPTIONS["output_format"]}
_STORAGE = fields("storage")


def convert(kind: str, input: PathLike, output: PathLike, options: ConvertOptions | None = None,
            **keywords: Any) -> ConvertResult:
    """``imgprep convert``: lists, ``classes.json``, ``hyperparameters.json`` (and manifests) in ``output``.

    Keywords are the CLI's dataset options: ``split`` (``"train=0.8,val=0.2"`` or pairs),
    ``train_per_class``, ``stratify``, ``shuffle``, ``seed``, ``dedup``, ``dedup_threshold``, ``dedup_report``,
    ``manifest_prefix``, ``label_format``, ``attribute``, ``job_name``, ``creation_date``, and the
    per-source ones (``extensions``, ``class_depth``, ``leaf_classes``, ``classes``,
    ``drop_clutter``, ``categories``, ``include_crowd``, ``min_area``, ``keep_empty``,
    ``variant``, ``root``, ``source_attribute``, ``source_label_format``), and
    ``follow_links_outside_root`` (list files reached through symlinks leading out of the image
    root; :func:`prepare` also packs them, :func:`pack` takes it too).  ``channels`` (3) and
    ``image_format`` (``"png"``) are MNIST's image files; ``echo`` (e.g. ``print``) receives the
    summary lines; ``storage`` or ``storage_options`` as in :func:`pack`.  Values are checked as
    the command line checks them.
    """
    given = _Given(keywords, echo=None, storage=None, storage_options=None)
    images = check(_IMAGES, given.take(*_IMAGES))
    images = ImageOutput(channels=images.get("channels") or 3, image_format=images.get("image_format") or "png")
    options = _convert_options(options, given.rest())
    store = _store(given.storage, given.storage_options)
    return _convert(ConvertRequest(kind, os.fspath(input), os.fspath(output), options), storage=store,
                    echo=given.echo, images=images)


def prepare(kind: str, input: PathLike, output: PathLike, **keywords: Any) -> PrepareResult:
    """``imgprep prepare``: :func:`convert`, then every split packed into ``output/<split>.rec`` + ``.idx``
    (``output_format="images"``: image channels ``output/train/`` ... with ``train_lst/train.lst`` ...).

    Keywords are :func:`convert`'s dataset options and :func:`pack`'s transform and run options
    (``resize=256``, ``color=0``, ``num_workers=8`` ...); ``image_root`` is the folder or ``s3://``
    prefix holding COCO's images.  The objects, for those who build them: ``spec``
    (:class:`TransformSpec`) and ``options`` (:class:`PackOptions`) as in :func:`pack`,
    ``convert_options`` (:class:`ConvertOptions`); ``echo``, ``storage`` and ``storage_options`` as in
    :func:`convert`.  Progress bars are off unless ``progress=True``.
    """
    given = _Given(keywords, image_root=None, spec=None, options=None, convert_options=None, echo=None,
                   storage=None, storage_options=None, output_format=OPTIONS["output_format"].default)
    output_format = check(_FORMAT, {"output_format": given.output_format})["output_format"]
    links = given.peek("follow_links_outside_root")  # both steps' switch: listing and packing
    dataset_options = _convert_options(given.convert_options, {**given.take(*(set(_CONVERT) - set(_RUN))), **links})
    store = _store(given.storage, given.storage_options, getattr(given.options, "storage", None))
    spec, options = _pack_settings(given.spec, given.options, given.rest())
    image_root = os.fspath(given.image_root) if given.image_root else None
    request = PrepareRequest(kind, os.fspath(input), os.fspath(output), dataset_options, spec, options,
                             image_root=image_root, output_format=output_format)
    return _prepare(request, store, echo=given.echo)


def pack(lists: PathLike | Sequence[PathLike] | Sequence[LstItem], root: Any, output: PathLike,
         spec: TransformSpec | None = None, options: PackOptions | None = None, **keywords: Any) -> PackSummary:
    """``imgprep pack``: lists (paths, or ``LstItem`` objects) into RecordIO at ``output``.

    Keywords are the CLI's options: transform ones (``resize``, ``size=(W, H)``, ``fit``,
    ``center_crop``, ``quality``, ``encoding``, ``color``, ``pass_through``, ``max_pixels``) and
    run ones (``num_workers``, ``executor``, ``shard_records``, ``shard_size``, ``strict``,
    ``pack_label``, ``quiet``, ``native``, ``resume``, ``checkpoint_bytes``), each checked as the
    command line checks it; ``storage`` (a :class:`Storage`) or ``storage_options`` (a dict of its
    options: ``endpoint_url``, ``part_size``, ``max_concurrency``, ...; unknown names are errors).
    Progress bars are off unless ``progress=True``.
    """
    from imgprep.splits.stream import ListStream  # here, like verify's and inspect's: a caller pays for what it calls

    given = _Given(keywords, storage=None, storage_options=None)
    store = _store(given.storage, given.storage_options, options.storage if options is not None else None)
    spec, options = _pack_settings(spec, options, given.rest())
    items: Any
    if isinstance(lists, str | os.PathLike):
        items = ListStream([lists], store)
    elif lists and all(isinstance(x, LstItem) for x in lists):
        items = list(lists)
    else:
        items = ListStream(lists, store)  # type: ignore[arg-type]
    return _pack(items, root, os.fspath(output), spec, options, storage=store)


def verify(path: PathLike, **keywords: Any) -> Report:
    """``imgprep verify``: read every record of a ``.rec``, shard prefix or ``.dataset.json``, and
    hold the ``hyperparameters.json``/``classes.json`` beside it to them (the pre-training check).

    Returns the report; problems in the data are in ``report.problems`` (``report.ok`` is False),
    not raised: an unreadable input or a bad argument raises.  Keywords: ``num_classes``,
    ``num_workers``, ``progress``; ``against``, a ``.lst`` path or its items: the records must be
    exactly those entries; ``max_skipped`` (a count or ``"1%"``) makes a pack that skipped more
    images a problem; ``train`` says whether these records are the training channel (default:
    named ``train*``); ``channel_settings`` fills ``report.channel`` with the SageMaker
    ``InputDataConfig`` entry; ``storage`` or ``storage_options`` as in :func:`pack`.
    """
    from imgprep import outputs

    given = _Given(keywords, against=None, progress=False, max_skipped=None, train=None, storage=None,
                   storage_options=None)
    checked = check(_VERIFY, given.rest())
    # flags a string would turn on: train="no" checked the records as the training channel
    typecheck.flag("progress", given.progress)
    typecheck.flag("train", given.train, optional=True)
    store = _store(given.storage, given.storage_options)
    name = ""
    items: Sequence[LstItem] | None = None
    if isinstance(given.against, str | os.PathLike):
        name = os.fspath(given.against)
        items = _lists.read_lists([name], store)
    elif given.against is not None:
        items = list(given.against)
    where = os.fspath(path)
    return outputs.opening(where, store).verify(where, store, num_classes=checked.get("num_classes"), against=items,
                                                against_name=name, workers=checked.get("num_workers"),
                                                progress=given.progress, max_skipped=given.max_skipped,
                                                train=given.train,
                                                channel_settings=bool(checked.get("channel_settings")))


def inspect(
    path: PathLike,
    *,
    root: PathLike | None = None,
    threshold: int | None = None,
    num_workers: int | None = None,
    html: PathLike | None = None,
    storage: Store | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Findings:
    """``imgprep inspect``: class balance, image sizes, exact and near duplicates, leaks across splits.

    ``path`` is local or ``s3://`` (a packed dataset, a list, a folder of them), read through
    ``storage`` or ``storage_options`` as in :func:`pack`.  ``findings.to_json()`` is the CLI's
    ``--json``; ``html`` also writes the CLI's ``--html`` page.
    """
    from imgprep import outputs

    check(_INSPECT, {"threshold": threshold, "num_workers": num_workers})
    if html is not None:
        from imgprep.requirements import require

        require("PIL")  # the page's thumbnails: say so before the scan, not after it
    where, store = os.fspath(path), _store(storage, storage_options)
    findings = outputs.opening(where, store).inspect(where, store, root=os.fspath(root) if root else None,
                                                      threshold=threshold, workers=num_workers)
    if html is not None:
        from imgprep.inspect.html import write_html

        write_html(findings, os.fspath(html))
    return findings


class _Given:
    """A call's keywords: the named non-option ones (with their defaults) as attributes, the options
    taken out by name or left for :meth:`rest`."""

    def __init__(self, keywords: dict[str, Any], **defaults: Any) -> None:
        self._options = dict(keywords)
        for name, default in defaults.items():
            setattr(self, name, self._options.pop(name, default))

    def __getattr__(self, name: str) -> Any:  # the named ones are set in __init__
        raise AttributeError(name)

    def take(self, *names: str) -> dict[str, Any]:
        return {n: self._options.pop(n) for n in names if n in self._options}

    def peek(self, *names: str) -> dict[str, Any]:
        return {n: self._options[n] for n in names if n in self._options}

    def rest(self) -> dict[str, Any]:
        rest, self._options = self._options, {}
        return rest


def _store(storage: Store | None, storage_options: Mapping[str, Any] | None, held: Store | None = None) -> Store:
    """The run's Store: the one given, one built from ``storage_options``, the one an older caller's
    ``PackOptions(storage=...)`` holds, or one with default settings."""
    if storage is not None and storage_options is not None:
        raise TypeError("give storage or storage_options, not both")
    if storage is not None:
        return storage
    if storage_options is not None:
        declared = {k: v for k, v in storage_options.items() if k in _STORAGE}
        check(_STORAGE, declared)
        return Storage.from_options(**storage_options)
    return held or Storage()


def _convert_options(options: ConvertOptions | None, keywords: dict[str, Any]) -> ConvertOptions:
    if options is not None:
        if keywords:
            raise TypeError(f"give options or keywords, not both (got {', '.join(sorted(keywords))})")
        _check_object(options, _CONVERT)
        _check_object(options.source, _CONVERT)
        return options
    return ConvertOptions.from_keywords(**check(_CONVERT, keywords))


def _pack_settings(
    spec: TransformSpec | None, options: PackOptions | None, keywords: dict[str, Any]
) -> tuple[TransformSpec, PackOptions]:
    """The transform and the run options from keywords (or the objects given)."""
    spec_keywords = {k: v for k, v in keywords.items() if k in _SPEC}
    run = {k: v for k, v in keywords.items() if k not in spec_keywords}
    check(_RUN, run)  # an unknown keyword: a TypeError before anything is built
    if spec is None:
        spec = TransformSpec(**check(_SPEC, spec_keywords))
    elif spec_keywords:
        raise TypeError(f"give spec or transform keywords, not both (got {', '.join(sorted(spec_keywords))})")
    if options is None:
        run.setdefault("progress", False)
        options = PackOptions(**check(_RUN, run))
    elif run:
        raise TypeError(f"give options or run keywords, not both (got {', '.join(sorted(run))})")
    _check_object(spec, _SPEC)
    _check_object(options, _RUN)
    if options.storage is not None:  # an older caller's Store: taken by _store, passed on on its own
        options = dataclasses.replace(options, storage=None)
    return spec, options


def _check_object(value: Any, declared: Mapping[str, Any]) -> None:
    """An object built by the caller, held to the same declarations as keywords."""
    check({k: o for k, o in declared.items() if hasattr(value, k)},
          {k: getattr(value, k) for k in declared if hasattr(value, k)})


def read_list(uri: str | os.PathLike[str], storage: Store | None = None) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``; ``storage`` defaults to :class:`Storage`)."""
    return _lists.read_list(uri, storage or Storage())


def read_lists(uris: Sequence[str | os.PathLike[str]], storage: Store | None = None) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    return _lists.read_lists(uris, storage or Storage())


def write_lst(uri: str | os.PathLike[str], items: Sequence[LstItem], storage: Store | None = None) -> None:
    """Write a ``.lst`` atomically (local: temporary name then rename; S3: one PUT)."""
    _lists.write_lst(uri, items, storage or Storage())
