"""COCO instances JSON -> multi-label dataset (multi-hot over the chosen categories).

pycocotools' ``COCO()`` prints to stdout, accepts annotations on unknown images and missing
keys silently, and its ``getImgIds`` is one Python set per category; the notebook built on it
is quadratic (``list.index`` per annotation).  Here the JSON is validated record by record in
one pass (one-line errors naming the record), and the label matrix is built with numpy.  The
defaults reproduce what the notebook gets from ``getImgIds(catIds=[c])``: crowd annotations
count, no minimum area, images with none of the chosen categories dropped.  The tests check
the result against pycocotools on the same file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from imgprep.errors import FormatError, SourceError, UsageError
from imgprep.formats.names import suggest
from imgprep.formats.paths import check_regular, check_relative_path, quote, unrepresentable
from imgprep.sources.loaded import ClassInfo, Dataset, check_label_matrix
from imgprep.sources.registry import IMAGE_ROOT, Kind, register


def load_json(path: str) -> Any:
    """Parse a JSON file; syntax errors name the line."""
    try:
        check_regular(path)
        with open(path, "rb") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SourceError("no such file", path=path) from None
    except IsADirectoryError:
        raise SourceError("is a directory (expected the instances JSON file)", path=path) from None
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} (column {exc.colno})"
        raise FormatError(message, path=path, line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 JSON ({exc.reason} at byte {exc.start})", path=path) from None
    except RecursionError:
        raise FormatError("JSON nested too deeply for the parser (COCO is a few levels deep)", path=path) from None
    except OSError as exc:
        raise SourceError(f"cannot read ({exc.strerror})", path=path) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _records(doc: dict[str, Any], key: str, path: str) -> list[Any]:
    if key not in doc:
        raise FormatError(f"missing key {key!r} (not a COCO instances file?)", path=path)
    value = doc[key]
    if not isinstance(value, list):
        raise FormatError(f"{key!r} must be a list, got {type(value).__name__}", path=path)
    return value


def _where(key: str, i: int, record: Any) -> str:
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{key}[{i}]" + (f" (id {rid if _is_int(rid) else quote(rid)})" if rid is not None else "")


def _check_annotation(ann: Any, i: int, row_of: dict[int, int], cat_ids: set[int], path: str) -> int:
    """The image row of a suspicious annotation, or the one-line error saying what is wrong."""
    if not isinstance(ann, dict):
        raise FormatError(f"annotations[{i}] is not an object", path=path)
    iid = ann.get("image_id")
    row = row_of.get(iid) if _is_int(iid) else None
    if row is None:
        what = "missing" if iid is None else f"{iid!r} is not among the images"
        raise FormatError(f"{_where('annotations', i, ann)}: image_id {what}", path=path)
    cid = ann.get("category_id")
    if not _is_int(cid) or cid not in cat_ids:
        what = "missing" if cid is None else f"{cid!r} is not among the categories"
        raise FormatError(f"{_where('annotations', i, ann)}: category_id {what}", path=path)
    return row


def choose_categories(
    cats: list[dict[str, Any]], wanted: Sequence[str | int] | None, path: str
) -> list[dict[str, Any]]:
    """The chosen categories in the chosen order (default: all, by id); names or ids accepted."""
    if not wanted:
        return sorted(cats, key=lambda c: c["id"])
    by_id = {c["id"]: c for c in cats}
    by_name = {c["name"]: c for c in cats}
    chosen: list[dict[str, Any]] = []
    for w in wanted:
        text = str(w).strip()
        cat = by_name.get(text)
        if cat is None and text.lstrip("-").isascii() and text.lstrip("-").isdigit():
            cat = by_id.get(int(text))
        if cat is None:
            hint = suggest(text, by_name)
            raise SourceError(f"no category named or numbered {quote(text)}{hint}", path=path)
        if cat in chosen:
            raise UsageError(f"category {quote(text)} is chosen twice")
        chosen.append(cat)
    return chosen


def load_coco(
    path: str,
    *,
    categories: Sequence[str | int] | None = None,
    include_crowd: bool = True,
    min_area: float = 0.0,
    keep_empty: bool = False,
    image_root: str | None = None,
) -> Dataset:
    """Read a COCO instances file into a multi-label :class:`Dataset` (paths = ``file_name``)."""
    if min_area < 0:
        raise UsageError(f"--min-area must not be negative, got {min_area}")
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise FormatError(f"top level must be a JSON object, got {type(doc).__name__}", path=path)
    images = _records(doc, "images", path)
    annotations = _records(doc, "annotations", path)
    cats = _records(doc, "categories", path)

    cat_ids: set[int] = set()
    names: set[str] = set()
    for i, c in enumerate(cats):
        if not isinstance(c, dict):
            raise FormatError(f"categories[{i}] is not an object", path=path)
        if not _is_int(c.get("id")):
            raise FormatError(f"{_where('categories', i, c)}: 'id' missing or not an integer", path=path)
        if not isinstance(c.get("name"), str):
            raise FormatError(f"{_where('categories', i, c)}: 'name' missing or not a string", path=path)
        problem = unrepresentable(c["name"])
        if problem:
            raise FormatError(f"{_where('categories', i, c)}: {problem}", path=path)
        if c["id"] in cat_ids:
            raise FormatError(f"{_where('categories', i, c)}: duplicate category id", path=path)
        if c["name"] in names:
            message = f"{_where('categories', i, c)}: duplicate category name {c['name']!r}"
            raise FormatError(message, path=path)
        cat_ids.add(c["id"])
        names.add(c["name"])
    if not cats:
        raise FormatError("'categories' is empty", path=path)

    row_of: dict[int, int] = {}
    file_names: list[str] = []
    sizes: list[tuple[int, int]] = []
    have_sizes = True
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise FormatError(f"images[{i}] is not an object", path=path)
        iid = im.get("id")
        if not _is_int(iid):
            raise FormatError(f"{_where('images', i, im)}: 'id' missing or not an integer", path=path)
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            raise FormatError(f"{_where('images', i, im)}: 'file_name' missing or not a string", path=path)
        problem = check_relative_path(name)
        if problem:
            raise FormatError(f"{_where('images', i, im)}: {problem}", path=path)
        if iid in row_of:
            raise FormatError(f"{_where('images', i, im)}: duplicate image id", path=path)
        row_of[iid] = i
        file_names.append(name)
        w, h = im.get("width"), im.get("height")
        if have_sizes and _is_int(w) and _is_int(h):
            sizes.append((w, h))
        else:
            have_sizes = False

    chosen = choose_categories(cats, categories, path)
    column = {c["id"]: j for j, c in enumerate(chosen)}
    rows = np.empty(len(annotations), dtype=np.int64)
    cols = np.empty(len(annotations), dtype=np.int64)
    keep = np.ones(len(annotations), dtype=bool)
    need_area = min_area > 0
    for i, ann in enumerate(annotations):
        # fast path first (exact int types, known ids); anything unusual goes to _check_annotation
        try:
            iid = ann["image_id"]
            cid = ann["category_id"]
            row = row_of[iid] if type(iid) is int else None
            ok = row is not None and type(cid) is int and cid in cat_ids
        except (KeyError, TypeError):
            ok = False
        if not ok:
            row = _check_annotation(ann, i, row_of, cat_ids, path)
            cid = ann["category_id"]
        rows[i] = row
        cols[i] = column.get(cid, -1)
        crowd = ann.get("iscrowd", 0)
        if crowd != 0:
            if crowd not in (0, 1):
                message = f"{_where('annotations', i, ann)}: iscrowd must be 0 or 1, got {crowd!r}"
                raise FormatError(message, path=path)
            if not include_crowd:
                keep[i] = False
        if need_area:
            area = ann.get("area")
            if not _is_number(area):
                raise FormatError(
                    f"{_where('annotations', i, ann)}: 'area' missing or not a number (needed by --min-area)",
                    path=path,
                )
            if area < min_area:
                keep[i] = False

    keep &= cols >= 0
    check_label_matrix(len(images), len(chosen), path)
    labels = np.zeros((len(images), len(chosen)), dtype=np.uint8)
    labels[rows[keep], cols[keep]] = 1
    selected = np.arange(len(images)) if keep_empty else np.flatnonzero(labels.any(axis=1))
    if selected.size == 0:
        raise SourceError("no image has any of the chosen categories", path=path)
    paths = [file_names[i] for i in selected.tolist()]
    min_side = None
    if have_sizes and sizes:
        dims = np.asarray(sizes, dtype=np.int64)[selected]
        min_side = int(dims.min())
    classes = [ClassInfo(name=c["name"], group=c.get("supercategory"), source_id=c["id"]) for c in chosen]
    notes = [f"{len(images)} images, {len(annotations)} annotations, {len(cats)} categories in the file"]
    dropped = len(images) - selected.size
    if dropped:
        notes.append(f"{dropped} image(s) with none of the chosen categories dropped")
    return Dataset(
        kind="coco",
        origin=path,
        classes=classes,
        paths=paths,
        labels=labels[selected],
        multi_label=True,
        root=image_root,
        min_side=min_side,
        mtime=os.path.getmtime(path),
        notes=notes,
    )


register(Kind("coco", load_coco, "instances JSON",
              options=("categories", "include_crowd", "min_area", "keep_empty"),
              image_root=IMAGE_ROOT, sizes=True))
