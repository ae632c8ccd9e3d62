"""Augmented manifests (JSON Lines): Ground Truth output in, SageMaker training input out.

Written records follow the Ground Truth output layout so people (and Ground Truth tools) can
read them: ``{"source-ref": "s3://...", "<attr>": label, "<attr>-metadata": {...}}``.  The
metadata's ``creation-date`` is an input to the bytes, so it is passed in (never read from the
clock here): see :func:`imgprep.convert.creation_date` for the rule.  The algorithm reads only
``AttributeNames`` in order; :func:`channel_settings` says which to configure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgprep.errors import FormatError, UsageError
from imgprep.formats.paths import quote, unrepresentable

LABEL_FORMATS = ("class-id", "multi-hot")
# Largest class id accepted: ids index label vectors and class tables, so one stray huge id
# would otherwise ask for gigabytes before anything is said.  (ImageNet-21k has 21,841 classes.)
MAX_CLASS_ID = 99_999
SINGLE_TYPE = "groundtruth/image-classification"
MULTI_TYPE = "groundtruth/image-classification-multilabel"


@dataclass(frozen=True)
class ManifestOptions:
    """How labels and metadata are written."""

    prefix: str
    attribute: str = "class"
    label_format: str = "multi-hot"
    job_name: str = "imgprep"
    creation_date: str = "1970-01-01T00:00:00.000000"

    def __post_init__(self) -> None:
        if self.label_format not in LABEL_FORMATS:
            raise UsageError(f"--label-format must be class-id or multi-hot, got {self.label_format!r}")
        if not self.attribute or self.attribute == "source-ref" or self.attribute.endswith("-metadata"):
            raise UsageError(f"--attribute {self.attribute!r} cannot name the label attribute")


def source_ref(prefix: str, path: str) -> str:
    """The image's URI; a name JSON Lines cannot carry is refused, never written through."""
    problem = unrepresentable(path)
    if problem:
        raise FormatError(problem)
    return prefix if not path else prefix.rstrip("/") + "/" + path.lstrip("/")


def record(
    path: str, labels: Sequence[float], class_names: Sequence[str], *, multi_label: bool, options: ManifestOptions
) -> dict[str, Any]:
    """One manifest record: image, label, Ground Truth style metadata."""
    meta: dict[str, Any]
    if multi_label:
        ids = [i for i, v in enumerate(labels) if v]
        label: Any = ids if options.label_format == "class-id" else [int(v) for v in labels]
        meta = {"class-map": {str(i): class_names[i] for i in ids}, "type": MULTI_TYPE}
    else:
        label = int(labels[0])
        meta = {"class-name": class_names[label], "type": SINGLE_TYPE}
    for name in meta.get("class-map", {}).values() if multi_label else [meta["class-name"]]:
        problem = unrepresentable(name)
        if problem:
            raise FormatError(f"class name: {problem}")
    meta["human-annotated"] = "no"
    meta["creation-date"] = options.creation_date
    meta["job-name"] = f"labeling-job/{options.job_name}"
    return {
        "source-ref": source_ref(options.prefix, path),
        options.attribute: label,
        f"{options.attribute}-metadata": meta,
    }


def dumps(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def channel_settings(*, multi_label: bool, options: ManifestOptions) -> dict[str, Any]:
    """What the training job's channel must say to read these manifests."""
    content_type = "application/x-recordio"
    if multi_label:
        content_type += f"; label-format={options.label_format}"
    return {
        "AttributeNames": ["source-ref", options.attribute],
        "ContentType": content_type,
        "RecordWrapperType": "RecordIO",
        "S3DataType": "AugmentedManifestFile",
    }


# --------------------------------------------------------------------------------------------
# Reading Ground Truth output manifests


@dataclass
class ParsedManifest:
    """Records of an input manifest: image URIs, labels as class ids, names from metadata."""

    attribute: str
    multi_label: bool
    refs: list[str] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


def _detect_attribute(rec: dict[str, Any], path: str, lineno: int) -> str:
    with_meta = [k for k in rec if k != "source-ref" and not k.endswith("-metadata") and f"{k}-metadata" in rec]
    if len(with_meta) == 1:
        return with_meta[0]
    others = [k for k in rec if k != "source-ref" and not k.endswith("-metadata")]
    if not with_meta and len(others) == 1:
        return others[0]
    found = ", ".join(repr(k) for k in (with_meta or others)) or "none"
    raise FormatError(
        f"cannot tell the label attribute (candidates: {found}); pass --attribute", path=path, line=lineno
    )


def _as_class_id(value: Any) -> int | None:
    """A class id from an int, an integral float or a string of ASCII digits; None otherwise.

    ``str.isdigit`` alone accepts ``"²"``, which ``int`` then refuses: digits must be ASCII.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 20:
            return int(text)
    return None


def _check_bounds(ids: list[int], where: str, path: str, lineno: int) -> None:
    """Class ids are bounded before any table is sized by them."""
    for cid in ids:
        if cid > MAX_CLASS_ID:
            raise FormatError(f"{where}: class id {cid} is above the limit of {MAX_CLASS_ID}", path=path, line=lineno)


def _json_record(line: str, path: str, lineno: int) -> dict[str, Any]:
    """One line as a JSON object with a usable ``source-ref``."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(f"not JSON ({exc.msg} at column {exc.colno})", path=path, line=lineno) from None
    except RecursionError:
        raise FormatError("JSON nested too deeply for the parser", path=path, line=lineno) from None
    if not isinstance(rec, dict):
        raise FormatError(f"expected a JSON object, got {type(rec).__name__}", path=path, line=lineno)
    ref = rec.get("source-ref")
    if not isinstance(ref, str) or not ref:
        raise FormatError("'source-ref' missing or not a string", path=path, line=lineno)
    problem = unrepresentable(ref)
    if problem:
        raise FormatError(f"'source-ref': {problem}", path=path, line=lineno)
    return rec


def _multi_label(value: Any, attr: str, label_format: str, path: str, lineno: int) -> list[int]:
    """The sorted class ids of a list label (class ids, or a multi-hot vector)."""
    if not isinstance(value, list):
        raise FormatError(f"{attr!r} is {quote(value)} where earlier lines hold lists", path=path, line=lineno)
    if len(value) > MAX_CLASS_ID + 1:
        raise FormatError(
            f"{attr!r} holds {len(value)} labels (the limit is {MAX_CLASS_ID + 1})", path=path, line=lineno
        )
    items = [_as_class_id(v) for v in value]
    if any(v is None for v in items):
        raise FormatError(f"{attr!r} holds a value that is not a class id: {quote(value)}", path=path, line=lineno)
    ids = [v for v in items if v is not None]
    if label_format == "multi-hot":
        if any(v > 1 for v in ids):
            raise FormatError(f"{attr!r} is not a multi-hot vector: {quote(value)}", path=path, line=lineno)
        ids = [i for i, v in enumerate(ids) if v]
    if len(set(ids)) != len(ids):
        raise FormatError(f"{attr!r} repeats a class id: {quote(value)}", path=path, line=lineno)
    return sorted(ids)


def _label(rec: dict[str, Any], parsed: ParsedManifest, label_format: str, path: str, lineno: int) -> list[int]:
    """The record's label as bounded class ids."""
    attr = parsed.attribute
    if attr not in rec:
        raise FormatError(f"label attribute {attr!r} missing", path=path, line=lineno)
    value = rec[attr]
    if parsed.multi_label:
        label = _multi_label(value, attr, label_format, path, lineno)
    else:
        cid = _as_class_id(value)
        if cid is None:
            raise FormatError(f"{attr!r} is not a class id: {quote(value)}", path=path, line=lineno)
        label = [cid]
    _check_bounds(label, repr(attr), path, lineno)
    return label


def _metadata_names(meta: Any, label: list[int], multi_label: bool, path: str, lineno: int) -> dict[int, Any]:
    """Class id -> name as the record's metadata states them (unchecked names)."""
    found: dict[int, Any] = {}
    if not isinstance(meta, dict):
        return found
    if isinstance(meta.get("class-map"), dict):
        for k, v in meta["class-map"].items():
            kid = _as_class_id(k)
            if kid is None:
                raise FormatError(f"class-map key {quote(k)} is not a class id", path=path, line=lineno)
            found[kid] = v
        _check_bounds(list(found), "class-map", path, lineno)
    elif "class-name" in meta and not multi_label:
        found[label[0]] = meta["class-name"]
    return found


def _merge_names(
    names: dict[int, str], name_line: dict[int, int], found: dict[int, Any], path: str, lineno: int
) -> None:
    """Add a record's class names; a class named differently on two lines is an error."""
    for cid, name in found.items():
        if not isinstance(name, str):
            raise FormatError(f"class name {quote(name)} for class {cid} is not a string", path=path, line=lineno)
        problem = unrepresentable(name)
        if problem:
            raise FormatError(f"class {cid}: {problem}", path=path, line=lineno)
        old = names.get(cid)
        if old is None:
            names[cid] = name
            name_line[cid] = lineno
        elif old != name:
            raise FormatError(
                f"class {cid} is named {quote(name)} here but {quote(old)} on line {name_line[cid]}",
                path=path,
                line=lineno,
            )


def _start(rec: dict[str, Any], attribute: str | None, path: str, lineno: int) -> ParsedManifest:
    """The result, its attribute and single/multi-label kind taken from the first record."""
    attr = attribute or _detect_attribute(rec, path, lineno)
    if attr not in rec:
        raise FormatError(f"label attribute {attr!r} missing", path=path, line=lineno)
    return ParsedManifest(attribute=attr, multi_label=isinstance(rec[attr], list))


def parse_manifest(
    lines: Iterable[str], *, path: str = "<manifest>", attribute: str | None = None, label_format: str = "class-id"
) -> ParsedManifest:
    """Parse Ground Truth image-classification output (single- or multi-label), strictly."""
    if label_format not in LABEL_FORMATS:
        raise UsageError(f"--label-format must be class-id or multi-hot, got {label_format!r}")
    parsed: ParsedManifest | None = None
    name_line: dict[int, int] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec = _json_record(line, path, lineno)
        if parsed is None:
            parsed = _start(rec, attribute, path, lineno)
        label = _label(rec, parsed, label_format, path, lineno)
        found = _metadata_names(rec.get(f"{parsed.attribute}-metadata"), label, parsed.multi_label, path, lineno)
        _merge_names(parsed.names, name_line, found, path, lineno)
        parsed.refs.append(rec["source-ref"])
        parsed.labels.append(label)
    if parsed is None:
        raise FormatError("manifest has no records", path=path)
    return parsed
