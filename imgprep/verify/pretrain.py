"""The pre-training check: what the training job will be told, against what the records hold.

SageMaker's image-classification algorithm takes ``num_classes``, ``num_training_samples``,
``image_shape`` and ``multi_label`` from ``hyperparameters.json``; a wrong sample count silently
breaks the learning-rate schedule, an ``image_shape`` larger than an image fails the job after
the instance has started.  So once verify has walked the records, this module holds the
``hyperparameters.json`` and ``classes.json`` beside them to what it found (record count, label
histogram, smallest image), counts the images the pack skipped against ``--max-skipped``, and
writes the exact channel settings the job needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from imgprep.errors import FormatError, UsageError
from imgprep.layout.names import unnumbered
from imgprep.layout.prepared import CLASSES, HYPERPARAMETERS, MANIFEST_SUFFIX, read_beside
from imgprep.verify.location import Location
from imgprep.verify.report import Report
from imgprep.verify.target import Target

TRAIN_NAMES = ("train", "training")


@dataclass(frozen=True)
class SkipLimit:
    """``--max-skipped N`` (images) or ``P%`` (of the images the list named)."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> SkipLimit | None:
        if text is None:
            return None
        value = str(text).strip()
        try:
            if value.endswith("%"):
                percent = float(value[:-1])
                if not 0 <= percent <= 100:
                    raise ValueError
                return cls(percent=percent)
            count = int(value)
            if count < 0:
                raise ValueError
            return cls(count=count)
        except ValueError:
            raise UsageError(f"--max-skipped {value!r}: give a count of images (e.g. 10) or a share "
                             "(e.g. 0.5%)") from None

    def exceeded(self, skipped: int, listed: int) -> bool:
        if self.count is not None:
            return skipped > self.count
        return listed > 0 and 100.0 * skipped / listed > (self.percent or 0.0)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.percent:g}%"


def split_name(target: Target) -> str:
    """The split the shards hold, from their names: ``out/train.rec`` -> ``train``."""
    rec = target.shards[0].rec if target.shards else target.name
    stem = rec.rsplit("/", 1)[-1]
    stem = stem[: -len(".rec")] if stem.endswith(".rec") else stem
    return unnumbered(stem)


def check(target: Target, report: Report, *, split: str, label_counts: list[int], max_skipped: SkipLimit | None,
          is_train: bool | None = None) -> None:
    """Add to ``report`` every disagreement between the records and the job's settings."""
    location = target.location
    hyper = read_beside(location, HYPERPARAMETERS)
    classes = read_beside(location, CLASSES)
    train = split in TRAIN_NAMES if is_train is None else is_train
    if hyper is not None:
        _check_hyperparameters(hyper, location.display(HYPERPARAMETERS), report, train, target)
        report.checks.append(HYPERPARAMETERS + (" (training channel)" if train else ""))
    if classes is not None:
        _check_classes(classes, location.display(CLASSES), report, split, label_counts, hyper)
        if _split_counts(classes, split) is not None:
            report.checks.append(f"{CLASSES} counts for {split}")
    if max_skipped is not None:
        _check_skipped(target, report, max_skipped)


def _int(doc: dict[str, Any], key: str) -> int | None:
    value = doc.get(key)
    try:
        return None if value is None else int(str(value))
    except ValueError:
        return None


# --- value checks (issue 28.6): each malformed value is one line, and the checks after it skip it ---


def _integer(value: Any) -> int | None:
    """A hyperparameter meant as an integer: a JSON integer or its decimal text, nothing else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _check_values(hyper: dict[str, Any], where: str, report: Report, train: bool) -> None:
    """The algorithm parses these before training starts; a value it cannot use fails the job
    after the instance has been paid for (or, for a sample count, quietly skews the schedule)."""
    records = report.records
    samples = hyper.get("num_training_samples")
    if samples is None and train:
        report.add(where, f"num_training_samples is missing (the training channel needs it): set it to {records}")
    elif samples is not None and (_integer(samples) if _integer(samples) is not None else -1) < 0:
        # another channel's records are not the training count: name the count, not this channel's
        count = records if train else "the training split's record count"
        report.add(where, f"num_training_samples {samples!r} is not a count of images: set it to {count}")
    classes = hyper.get("num_classes")
    if classes is None:
        report.add(where, "num_classes is missing (the algorithm needs it)")
    elif (_integer(classes) or 0) < 1:
        report.add(where, f"num_classes {classes!r} is not a positive integer")
    multi = hyper.get("multi_label")
    if "multi_label" in hyper and (multi is None or str(multi).strip() not in ("0", "1")):  # null: no value at all
        report.add(where, f"multi_label {multi!r} must be 0 or 1")
    shape = hyper.get("image_shape")
    if shape is not None:
        _check_shape_values(str(shape), where, report)
    elif "image_shape" in hyper:
        report.add(where, "image_shape null is not 'C,H,W'")


def _check_shape_values(shape: str, where: str, report: Report) -> None:
    parts = [_integer(x) for x in shape.split(",")]
    if len(parts) != 3 or any(p is None for p in parts):
        return  # _check_shape says it is not 'C,H,W'
    channels, height, width = (p or 0 for p in parts)
    if height < 1 or width < 1:
        report.add(where, f"image_shape {shape} must have positive height and width")
    held = sorted({c for _, _, c in report.sizes})
    if held and channels in (1, 3) and held != [channels]:
        report.add(where, f"image_shape {shape} has {channels} channel(s), the records hold "
                          f"{' and '.join(map(str, held))}-channel images")


# --- end of value checks ---


def _check_hyperparameters(hyper: dict[str, Any], where: str, report: Report, train: bool, target: Target) -> None:
    _check_values(hyper, where, report, train)
    records = report.records
    samples = _int(hyper, "num_training_samples")
    if train and samples is not None and samples != records:
        report.add(where, f"num_training_samples={samples} but the training records hold {records} "
                          f"(the learning-rate schedule would be wrong): set it to {records}")
    classes = _int(hyper, "num_classes")
    declared = target.record.num_classes if target.record is not None else None
    if classes is not None and declared is not None and classes != declared:
        report.add(where, f"num_classes={classes} but the dataset record says {declared}")
    multi = str(hyper.get("multi_label", "0")).strip() == "1"
    width = report.label_width
    if width is not None:
        if multi and classes is not None and width != classes:
            report.add(where, f"multi_label=1 with num_classes={classes}, but the records hold label vectors of "
                              f"width {width} (pack with --pack-label from a multi-hot list of {classes} columns)")
        elif not multi and width > 1:
            report.add(where, f"multi_label is not 1, but the records hold label vectors of width {width}")
    shape = hyper.get("image_shape")
    if shape is not None:
        _check_shape(str(shape), where, report)


def _check_shape(shape: str, where: str, report: Report) -> None:
    try:
        channels, height, width = (int(x) for x in shape.split(","))
    except ValueError:
        report.add(where, f"image_shape {shape!r} is not 'C,H,W'")
        return
    if channels not in (1, 3):
        report.add(where, f"image_shape {shape} has {channels} channels (1 or 3)")
    if not report.sizes:
        return
    small = {dims: n for dims, n in report.sizes.items() if dims[1] < height or dims[0] < width}
    if small:
        count = sum(small.values())
        least_h = min(h for _, h, _ in report.sizes)
        least_w = min(w for w, _, _ in report.sizes)
        report.add(where, f"image_shape {shape} is larger than {count:,} image(s) (smallest {least_w}x{least_h}): "
                          f"training fails on an image smaller than image_shape; at most "
                          f"{channels},{min(height, least_h)},{min(width, least_w)}")


def _split_counts(classes: dict[str, Any], split: str) -> list[int] | None:
    entries = classes.get("classes")
    if not isinstance(entries, list):
        return None
    counts = []
    for entry in entries:
        value = entry.get("counts", {}).get(split) if isinstance(entry, dict) else None
        if not isinstance(value, int):
            return None
        counts.append(value)
    return counts


def _check_classes(classes: dict[str, Any], where: str, report: Report, split: str, label_counts: list[int],
                   hyper: dict[str, Any] | None) -> None:
    number = _int(classes, "num_classes")
    if hyper is not None and number is not None:
        stated = _int(hyper, "num_classes")
        if stated is not None and stated != number:
            report.add(where, f"num_classes={number} but {HYPERPARAMETERS} says {stated}")
    sizes = classes.get("splits")
    if isinstance(sizes, dict) and isinstance(sizes.get(split), int) and sizes[split] != report.records:
        report.add(where, f"says {split} holds {sizes[split]} images, the records hold {report.records}")
    expected = _split_counts(classes, split)
    if expected is None:
        return
    names = classes.get("names") if isinstance(classes.get("names"), dict) else {}
    found = list(label_counts) + [0] * max(0, len(expected) - len(label_counts))
    wrong = [(i, expected[i], found[i]) for i in range(len(expected)) if expected[i] != found[i]]
    for i, want, got in wrong[:SHOWN_CLASSES]:
        name = names.get(str(i), "")
        report.add(where, f"class {i}{f' ({name})' if name else ''}: {want} in {split}, the records hold {got}")
    if len(wrong) > SHOWN_CLASSES:
        report.add(where, f"…and {len(wrong) - SHOWN_CLASSES} more classes whose {split} counts differ")
    for i in range(len(expected), len(found)):
        if found[i]:
            report.add(where, f"names {len(expected)} classes, but {found[i]} record(s) hold label {i}")


SHOWN_CLASSES = 5


def _check_skipped(target: Target, report: Report, limit: SkipLimit) -> None:
    record = target.record
    if record is None:
        report.add(target.name, f"--max-skipped {limit}: no dataset record (PREFIX.dataset.json) says how many "
                                "images the pack skipped")
        return
    listed = record.list.entries
    report.checks.append(f"skipped images <= {limit}")
    if limit.exceeded(record.skipped, listed):
        share = f" ({100.0 * record.skipped / listed:.2f}% of {listed:,})" if listed else ""
        report.add(target.name, f"{record.skipped:,} image(s) were skipped when packing{share}, more than "
                                f"--max-skipped {limit} (the reasons are in the pack's .skipped.tsv)")


def channel_settings(target: Target, split: str, report: Report) -> dict[str, Any]:
    """The training job's ``InputDataConfig`` entry for these records (and a manifest beside them)."""
    location = target.location
    rec = target.shards[0].rec if len(target.shards) == 1 else None
    uri = _remote_uri(location, rec) if rec else None
    channel = "train" if split in TRAIN_NAMES else "validation" if split in ("val", "validation") else split
    settings: dict[str, Any] = {
        "ChannelName": channel,
        "ContentType": "application/x-recordio",
        "RecordWrapperType": "None",
        "InputMode": "Pipe",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                        "S3Uri": uri or f"<the s3:// URI you upload {rec or 'the .rec'} to>",
                                        "S3DataDistributionType": "FullyReplicated"}},
    }
    out = {"recordio": settings}
    manifest = split + MANIFEST_SUFFIX
    if location.exists(manifest):
        out["manifest"] = _manifest_settings(location, manifest, channel, target.expect.num_classes)
    if len(target.shards) > 1:
        out["note"] = (f"{len(target.shards)} shards: the algorithm reads one .rec per channel; join them with "
                       "`imgprep merge` first")
    return out


def _manifest_settings(location: Location, name: str, channel: str, num_classes: int | None) -> dict[str, Any]:
    first = location.read(name).split(b"\n", 1)[0]
    try:
        doc = json.loads(first)
    except ValueError as exc:
        raise FormatError(f"line 1 is not JSON ({exc})", path=location.display(name)) from None
    keys = [k for k in doc if not k.endswith("-metadata")] if isinstance(doc, dict) else []
    if "source-ref" in keys:
        keys.remove("source-ref")
        keys.insert(0, "source-ref")
    label = doc.get(keys[1]) if len(keys) > 1 else None
    content = "application/x-recordio"
    if isinstance(label, list):
        # a 0/1 vector as long as the class list is multi-hot; anything else lists class ids
        hot = set(label) <= {0, 1} and (len(label) == num_classes if num_classes else len(label) > 2)
        content += "; label-format=" + ("multi-hot" if hot else "class-id")
    return {
        "ChannelName": channel,
        "ContentType": content,
        "RecordWrapperType": "RecordIO",
        "InputMode": "Pipe",
        "DataSource": {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "AttributeNames": keys[:2],
                                        "S3Uri": _remote_uri(location, name)
                                        or f"<the s3:// URI you upload {name} to>",
                                        "S3DataDistributionType": "FullyReplicated"}},
    }


def _remote_uri(location: Location, name: str) -> str | None:
    """``name``'s URI when it already lives in object storage (the job reads it from there)."""
    uri = location.uri(name)
    return None if location.storage.is_local(uri) else uri
