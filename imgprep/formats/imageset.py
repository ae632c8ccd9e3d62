"""The image-set record ``_imgprep/<channel>.images.json``: what one image channel holds.

The image format (``train/``, ``validation/`` with ``train_lst/train.lst`` ...) has no index a
reader could check images against, so ``prepare --format images`` writes this record for each
channel: every written image by its path relative to the channel, with its size in bytes, MD5
(what S3 reports as the ETag of an object put whole, so a resumed run and ``verify`` can compare
without downloading) and pixel size, plus the list it came from and the settings that shaped
the bytes.  It lives outside the channels (a channel must hold only images, or one ``.lst``).

Pure functions: build, serialise, parse.  No time stamps: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imgprep.errors import FormatError
from imgprep.formats.paths import check_relative_path

KIND = "imgprep.images"
VERSION = 1
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ImageEntry:
    """One written image: its path under the channel, list id, size, checksum and pixel size.

    ``md5`` is None where only S3 knows the bytes (a server-side copy of an object uploaded in
    parts, whose ETag is not an MD5); ``etag`` is then what S3 reported."""

    path: str
    index: int
    bytes: int
    md5: str | None
    width: int | None = None
    height: int | None = None
    etag: str | None = None


@dataclass(frozen=True)
class ImageSet:
    imgprep_version: str
    channel: str
    list_name: str  # the .lst, relative to the output folder
    list_sha256: str
    generation: str  # the folder under the channel these images live in
    images: tuple[ImageEntry, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    label_width: int = 1
    num_classes: int | None = None
    skipped: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.images)


def to_json(record: ImageSet) -> str:
    """Canonical JSON (sorted keys), one image per line so a diff names the image."""
    head = {
        "kind": KIND, "version": VERSION, "imgprep": record.imgprep_version, "channel": record.channel,
        "list": {"name": record.list_name, "sha256": record.list_sha256, "entries": len(record.images)},
        "generation": record.generation, "settings": dict(record.settings), "label_width": record.label_width,
        "num_classes": record.num_classes, "skipped": record.skipped, "bytes": record.total_bytes,
    }
    lines = [json.dumps(_image_doc(e), sort_keys=True, ensure_ascii=False) for e in record.images]
    text = json.dumps({**head, "images": "\x00"}, sort_keys=True, ensure_ascii=False, indent=1)
    images = "[\n  " + ",\n  ".join(lines) + "\n ]" if lines else "[]"
    return text.replace('"\\u0000"', images) + "\n"


def _image_doc(entry: ImageEntry) -> dict[str, Any]:
    return {k: v for k, v in vars(entry).items() if v is not None or k == "md5"}


def from_json(text: str | bytes, path: str) -> ImageSet:
    """Parse and validate; every defect is a :class:`FormatError` naming ``path``."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not a JSON image-set record ({exc})", path=path) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise FormatError(f"not an imgprep image-set record (no \"kind\": \"{KIND}\")", path=path)
    if doc.get("version") != VERSION:
        raise FormatError(f"image-set record version {doc.get('version')!r} is not supported", path=path)
    lst = doc.get("list")
    images = doc.get("images")
    if not isinstance(lst, dict) or not isinstance(images, list):
        raise FormatError("\"list\" must be an object and \"images\" an array", path=path)
    entries = tuple(_entry(e, i, path) for i, e in enumerate(images))
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise FormatError(f"image {entry.path} is listed twice", path=path)
        seen.add(entry.path)
    try:
        return ImageSet(
            imgprep_version=str(doc["imgprep"]), channel=_text(doc, "channel", path),
            list_name=_text(lst, "name", path), list_sha256=_sha(lst.get("sha256"), "list.sha256", path),
            generation=_text(doc, "generation", path), images=entries, settings=dict(doc.get("settings") or {}),
            label_width=int(doc.get("label_width", 1)), num_classes=doc.get("num_classes"),
            skipped=int(doc.get("skipped", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"malformed image-set record ({exc})", path=path) from None


def _text(doc: Mapping[str, Any], key: str, path: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise FormatError(f"{key} must be a non-empty string", path=path)
    return value


def _sha(value: Any, key: str, path: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise FormatError(f"{key} must be 64 lower-case hex digits", path=path)
    return value


def _entry(doc: Any, number: int, path: str) -> ImageEntry:
    where = f"images[{number}]"
    if not isinstance(doc, dict):
        raise FormatError(f"{where} is not an object", path=path)
    name = doc.get("path")
    problem = check_relative_path(name) if isinstance(name, str) else "path must be a string"
    if problem:
        raise FormatError(f"{where}: {problem}", path=path)
    md5 = doc.get("md5")
    if md5 is not None and (not isinstance(md5, str) or len(md5) != 32 or not set(md5) <= _HEX):
        raise FormatError(f"{where}.md5 must be 32 lower-case hex digits or null", path=path)
    size, index = doc.get("bytes"), doc.get("index")
    if not isinstance(size, int) or size < 0 or not isinstance(index, int) or index < 0:
        raise FormatError(f"{where}: bytes and index must be non-negative integers", path=path)
    return ImageEntry(name, index, size, md5, doc.get("width"), doc.get("height"), doc.get("etag"))
