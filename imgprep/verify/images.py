"""Verify an image-format output (``prepare --format images``): every channel's list against its images.

For each channel an image-set record names (``_imgprep/<channel>.images.json``): the ``.lst``
parses (tab-separated, ids unique, one label width), is the list the record committed
(SHA-256), names exactly the record's images; every listed image exists, has the record's size
and MD5, decodes, and is at least ``image_shape`` (``hyperparameters.json``) on both sides;
labels are class indices in ``[0, num_classes)`` or 0/1 vectors of width ``num_classes``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imgprep.errors import FormatError, ImageError, ImgprepError
from imgprep.formats import imageset
from imgprep.formats.lst import LstItem, parse_lines
from imgprep.imaging.decode import decode
from imgprep.layout import channels as names
from imgprep.layout import prepared
from imgprep.storage.base import Store, join
from imgprep.verify.report import Report


def records_under(path: str, storage: Store) -> list[str]:
    """The image-set records of the output folder ``path`` (none: not an image-format output)."""
    meta = join(path, names.META).rstrip("/") + "/"
    return [e.uri for e in storage.list(meta) if e.uri.endswith(".images.json")]


def is_image_output(path: str, storage: Store) -> bool:
    try:
        return bool(records_under(path, storage))
    except ImgprepError:
        return False


def verify_images(path: str, storage: Store, *, num_classes: int | None = None, workers: int | None = None,
                  channel_settings: bool = False, **_: Any) -> Report:
    """Check every channel of the image-format output under ``path`` (local or ``s3://``)."""
    report = Report(path)
    report.checks = ["lists", "ids", "labels", "exists", "size and MD5 vs the record", "decode", "image_shape"]
    params = _hyperparameters(path, storage, report)
    classes = num_classes or _int(params.get("num_classes"))
    shape = [int(x) for x in params["image_shape"].split(",")] if "image_shape" in params else None
    multi = params.get("multi_label") == "1"
    report.labels = (f"{'multi-hot vectors' if multi else 'class indices'} in [0, {classes})" if classes
                     else "num_classes unknown: labels checked to be non-negative integers")
    found: dict[str, imageset.ImageSet] = {}
    for uri in sorted(records_under(path, storage)):
        try:
            record = imageset.from_json(storage.read_bytes(uri), uri)
        except ImgprepError as exc:
            report.add(uri, exc.message)
            continue
        found[record.channel] = record
        report.shards.append(names.list_uri(path, record.channel))
        _check_channel(path, record, storage, report, classes, multi, shape, workers)
    if not found:
        report.add(path, "no image-set record under _imgprep/: not an image-format output")
    if channel_settings:
        report.channel = settings(path, list(found), storage)
    return report


def _check_channel(path: str, record: imageset.ImageSet, storage: Store, report: Report, classes: int | None,
                   multi: bool, shape: list[int] | None, workers: int | None) -> None:
    lst = names.list_uri(path, record.channel)
    try:
        text = storage.read_text(lst)
        items = list(parse_lines(text.splitlines(keepends=True), path=lst))  # ids unique, columns constant
    except ImgprepError as exc:
        report.add(lst, exc.message)
        return
    if hashlib.sha256(text.encode()).hexdigest() != record.list_sha256:
        report.add(lst, "is not the list its image-set record committed (SHA-256 differs)")
    entries = {e.path: e for e in record.images}
    for item in items:
        _check_labels(lst, item, report, classes, multi)
        if item.path not in entries:
            report.add(f"{lst} id {item.index}", f"{item.path} is not in the image-set record")
    root = names.channel_uri(path, record.channel)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        for where, problem, size in pool.map(lambda it: _check_image(root, it, entries, storage, shape), items):
            report.records += 1
            if problem:
                report.add(where, problem)
            if size is not None:
                report.decoded += 1
                report.sizes[size] = report.sizes.get(size, 0) + 1


def _check_labels(lst: str, item: LstItem, report: Report, classes: int | None, multi: bool) -> None:
    labels = item.labels
    report.count_labels(labels, multi)
    where = f"{lst} id {item.index}"
    if multi or len(labels) > 1:
        if any(v not in (0.0, 1.0) for v in labels):
            report.add(where, f"multi-hot labels must be 0 or 1, got {list(labels)}")
        elif classes is not None and len(labels) != classes:
            report.add(where, f"{len(labels)} label columns, num_classes is {classes}")
        return
    value = labels[0]
    if not float(value).is_integer() or value < 0 or (classes is not None and value >= classes):
        report.add(where, f"label {value:g} is not a class index in [0, {classes if classes else 'num_classes'})")


def _check_image(root: str, item: LstItem, entries: dict[str, imageset.ImageEntry], storage: Store,
                 shape: list[int] | None) -> tuple[str, str | None, tuple[int, int, int] | None]:
    uri = root + item.path
    try:
        data = storage.read_bytes(uri)
    except ImgprepError as exc:
        return uri, f"listed but cannot be read ({exc.message})", None
    entry = entries.get(item.path)
    if entry is not None and (len(data) != entry.bytes or (
            entry.md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != entry.md5)):
        return uri, f"{len(data)} bytes that differ from the image-set record's ({entry.bytes}, MD5 {entry.md5})", None
    try:
        got = decode(data)
    except ImageError as exc:
        return uri, f"does not decode ({exc.message})", None
    size = (got.width, got.height, got.channels)
    if shape is not None and (got.height < shape[1] or got.width < shape[2]):
        return uri, f"{got.width}x{got.height} is smaller than image_shape {','.join(map(str, shape))}", size
    return uri, None, size


def _hyperparameters(path: str, storage: Store, report: Report) -> dict[str, str]:
    try:
        doc = prepared.read_beside(_Folder(path, storage), prepared.HYPERPARAMETERS)
    except FormatError as exc:
        report.add(prepared.hyperparameters_name(path), exc.message)
        return {}
    return {str(k): str(v) for k, v in (doc or {}).items()}


class _Folder:
    """The output folder as :func:`imgprep.layout.prepared.read_beside` reads it."""

    def __init__(self, path: str, storage: Store) -> None:
        self.path, self.storage = path, storage

    def exists(self, name: str) -> bool:
        return self.storage.exists(join(self.path, name))

    def read(self, name: str) -> bytes:
        return self.storage.read_bytes(join(self.path, name))

    def display(self, name: str) -> str:
        return join(self.path, name)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def settings(path: str, channels: list[str], storage: Store) -> dict[str, Any]:
    """The training job's four ``InputDataConfig`` entries (File mode, ``application/x-image``),
    and the augmented-manifest variant (Pipe mode) when manifests of the written images are there."""
    remote = storage.local_path(path) is None

    def where(uri: str) -> str:
        return uri if remote else f"<the s3:// URI you upload {uri} to>"

    def entry(name: str, uri: str) -> dict[str, Any]:
        return {"ChannelName": name, "ContentType": names.CONTENT_TYPE, "InputMode": "File",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": where(uri),
                                                "S3DataDistributionType": "FullyReplicated"}}}

    image = []
    for channel in ("train", "validation"):
        if channel in channels:
            image.append(entry(channel, names.channel_uri(path, channel)))
            image.append(entry(f"{channel}_lst", names.list_uri(path, channel).rsplit("/", 1)[0] + "/"))
    out: dict[str, Any] = {"images": image}
    manifests = []
    for channel in ("train", "validation"):
        uri = prepared.manifest_name(path, channel)
        if channel in channels and storage.exists(uri):
            first = json.loads(storage.read_bytes(uri).split(b"\n", 1)[0] or b"{}")
            keys = ["source-ref", *[k for k in first if k != "source-ref" and not k.endswith("-metadata")][:1]]
            label = first.get(keys[1]) if len(keys) > 1 else None
            content = "application/x-recordio" + ("; label-format=multi-hot" if isinstance(label, list) else "")
            manifests.append({"ChannelName": channel, "ContentType": content, "RecordWrapperType": "RecordIO",
                              "InputMode": "Pipe",
                              "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile",
                                                              "AttributeNames": keys, "S3Uri": where(uri),
                                                              "S3DataDistributionType": "FullyReplicated"}}})
    if manifests:
        out["manifest"] = manifests
    return out
