"""Every option of ``imgprep``'s commands, declared once.

The click parameters (:mod:`imgprep.options.faces`), the API's keyword checks (:func:`check`) and
the Processing job's config keys are all made from :data:`OPTIONS`.  A group names the typed
object its options become (:data:`TARGETS`); options without one reach their command by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from imgprep.options.declare import Option
from imgprep.sources import KINDS

S3 = "S3-compatible endpoint for s3:// paths [env: AWS_ENDPOINT_URL]."
PROGRESS = ("Progress as plain lines (start, every 30 s, end), even on a terminal [default: a bar on a terminal, "
            "lines in a log or pipe].")
_SIZE_WITHOUT_UNIT = 1 << 20  # --shard-size 1 meant 1 GiB, not a shard per record


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _given_flag(value: bool) -> bool | None:
    return value or None  # an unset flag leaves the source's default


def _color(value: str) -> int:
    return int(value)


def _checkpoint(value: int) -> int | None:
    return value or None  # 0 on the command line: the default interval


_TRANSFORM = [
    Option(("--resize",), "Scale so the shorter side is N pixels (im2rec's --resize).", int, low=1, unset=0),
    Option(("--size",), "Exact output size WxH, e.g. 348x348.", "WxH"),
    Option(("--fit",), "How --size is reached: centre crop, letterbox pad (black), or stretch.",
           ("crop", "pad", "stretch"), "crop", show_default=True),
    Option(("--center-crop",), "Square centre crop before resizing (im2rec).", bool, False),
    Option(("--quality",), "JPEG quality.", int, 95, low=1, high=100, show_default=True),
    Option(("--encoding",), "Encoding of the stored images.", ("jpg", "png"), "jpg", show_default=True,
           aliases=((".jpg", "jpg"), (".png", "png"))),
    Option(("--color",), "1: RGB, 0: grayscale, -1: as decoded (alpha kept in PNG).", ("1", "0", "-1"), "1",
           show_default=True, parse=_color),
    Option(("--pass-through",), "Store the files' bytes unchanged (no decode; header sanity check only).", bool,
           False),
    Option(("--max-pixels",), "Decompression-bomb guard: refuse larger images before decoding them.", int,
           100_000_000, low=1, show_default=True),
    Option(("pad_color",), "Gray level of --fit pad's borders.", int, 0, cli=False),
]

_RUN = [
    Option(("--pack-label",), "Store all label columns in the record (multi-label; flag = N).", bool, False),
    Option(("-j", "--num-workers"), "Workers [default: all cores].", int, low=1),
    Option(("--executor",), "Worker kind: auto = threads where the native core makes whole chunks of records "
           "without the GIL (JPEGs, --pass-through), processes on the Pillow path and where the first chunk "
           "shows most images need Python (PNGs, CMYK JPEGs), none where the first chunks show that workers "
           "could not be faster than one (a single core, or the SHA-256 of the output setting the pace).",
           ("auto", "thread", "process"), "auto",
           show_default=True),
    Option(("--shard-records",), "Start a new shard (OUT-00000.rec ...) every N records.", int, low=1,
           unset=0),
    Option(("--shard-size",), "Start a new shard before a .rec would exceed this size (e.g. 1GiB; a number "
           "without a unit is bytes, at least 1048576).", "bytes", bare_minimum=_SIZE_WITHOUT_UNIT),
    Option(("--strict",), "Fail (exit 3, no dataset committed) on the first bad image.", bool, False),
    Option(("--checkpoint-every",), "Checkpoint the shard being written every N bytes, so --resume continues "
           "mid-shard (on S3: the multipart upload) [default: 32MiB].", "bytes", field="checkpoint_bytes",
           parse=_checkpoint),
    Option(("--resume",), "Continue an interrupted run after its last good published shard (same list, "
           "settings and version, else refused); without it a rerun starts clean.", bool, False),
    Option(("-q", "--quiet"), "Print nothing but errors (no progress bar, no summary).", bool, False),
    Option(("--native/--no-native",), "Force or forbid the libjpeg-turbo core [default: use it when built].",
           bool),
    Option(("--progress",), PROGRESS, bool, parse=_given_flag),
    Option(("--num-classes",), "Classes the dataset record states (labels must lie in [0, N)) [default: from "
           "the classes.json beside the list, else recorded as unknown].", int, low=1, id="pack_num_classes"),
    Option(("class_names",), "Class names by index, stated in the dataset record.", cli=False),
    Option(("report",), "Write the skipped images' report.", bool, True, cli=False),
    Option(("chunk_size",), "Records per worker task (0: from the list length and worker count).", int, 0, low=0,
           cli=False),
]

_STORAGE = [
    Option(("--endpoint-url",), S3, envvar="AWS_ENDPOINT_URL"),
    Option(("--part-size",), "S3 multipart part size [default: 8MiB; at least 5MiB].", "bytes"),
    Option(("--max-concurrency",), "S3 parts uploading at once per file [default: 4].", int, low=1),
]

_LINKS = [
    Option(("--follow-links-outside-root", "follow_links_outside_root"), "Read images reached through "
           "symlinks that lead outside the image root (a dataset assembled as links into a shared store). "
           "By default convert and prepare leave such files out of the lists (the warnings name them) and "
           "pack refuses them, so an archive from elsewhere cannot pull this machine's files into a shard.",
           bool, False),
]

_DATASET = [
    Option(("--split",), "Shares per split, e.g. train=0.8,val=0.2 or train=0.7,val=0.2,test=0.1.",
           metavar="NAME=SHARE,..."),
    Option(("--train-per-class",), "N images of every class to train, the rest to val (Caltech protocol).", int,
           low=1, metavar="N"),
    Option(("--stratify/--no-stratify",), "Keep every class's share in every split.", bool, True,
           show_default=True),
    Option(("--shuffle/--no-shuffle",), "Random selection and order (seeded); --no-shuffle keeps input order.",
           bool, True, show_default=True),
    Option(("--seed",), "Seed for splits and order.", int, 0, low=0, show_default=True),
    Option(("--dedup",), "Duplicate groups (identical files; resized, re-encoded, cropped, padded, rotated or "
           "mirrored copies): report them (leaks = groups across splits, conflicts = groups across classes), or "
           "keep every group in one split (same-split; 'drop' is its old name).",
           ("off", "report", "same-split", "drop"), "report", show_default=True),
    Option(("--dedup-threshold",), "Near-duplicate distance in pHash bits [default: 8].", int, low=0, high=11),
    Option(("--dedup-report",), "Write every duplicate group as JSON Lines (members, splits, which to drop to "
           "close a leak).", metavar="FILE"),
    Option(("--manifest-prefix",), "Also write <split>.manifest with source-ref = S3URI + image path.",
           metavar="S3URI"),
    Option(("--label-format",), "Multi-label manifests: [1,0,1] or [0,2].", ("multi-hot", "class-id"),
           "multi-hot", show_default=True),
    Option(("--attribute",), "Label attribute name in written manifests.", default="class", show_default=True),
    Option(("--job-name",), "Manifest metadata job-name [default: imgprep-KIND]."),
    Option(("--creation-date",), "Manifest metadata creation-date (fixed for reproducible output).",
           metavar="ISO8601"),
]

# Per-source options: their kinds come from the loaders (imgprep.sources.options).
_SOURCE = [
    Option(("--extensions",), "Image extensions [default: jpg,jpeg,png,ppm,bmp,pgm,tif,tiff,webp].",
           metavar="EXT,...", parse=_csv),
    Option(("--class-depth",), "Folder level that names the class [default: 1].", int, low=1),
    Option(("--leaf-classes",), "Every folder holding images is a class (nested trees).", bool,
           parse=_given_flag),
    Option(("--classes", "class_list"), "Use only these classes, in this order.", field="classes",
           metavar="NAME,...", parse=_csv),
    Option(("--drop-clutter",), "Leave out 257.clutter / BACKGROUND_Google.", bool, parse=_given_flag),
    Option(("--categories",), "Categories in label order [default: all, by id].", metavar="NAME|ID,...",
           parse=_csv),
    Option(("--crowd/--no-crowd", "include_crowd"), "Count crowd annotations [default: yes, like getImgIds].",
           bool),
    Option(("--min-area",), "Ignore annotations smaller than this area.", float, low=0),
    Option(("--keep-empty",), "Keep images with none of the categories (all-zero labels).", bool,
           parse=_given_flag),
    Option(("--variant",), "Class names [default: fashion].", ("fashion", "digits")),
    Option(("--root",), "Local copy of the images (of S3PREFIX, default the common prefix).",
           metavar="[S3PREFIX=]DIR"),
    Option(("--source-attribute",), "Label attribute of the input [default: detected]."),
    Option(("--source-label-format",), "How multi-label input lists labels [default: class-id].",
           ("class-id", "multi-hot")),
]

# Options of one command or a few, taken by name.
_COMMAND = [
    Option(("kind",), value=tuple(KINDS), argument=True),
    Option(("input",), metavar="INPUT", argument=True),
    Option(("-o", "--output", "outdir"), "Output folder or s3://bucket/prefix/.", required=True, metavar="OUTDIR"),
    Option(("--image-root",), "Folder (or s3:// prefix) the image paths are relative to (coco: the images "
           "folder; convert reads it for the duplicate check).", metavar="DIR"),
    Option(("--format", "output_format"), "How each split is written: recordio (OUTDIR/<split>.rec + .idx) or "
           "images (image channels OUTDIR/train/, validation/ with train_lst/train.lst ..., content type "
           "application/x-image; the split val goes to validation/).", ("recordio", "images"), "recordio",
           show_default=True),
    Option(("--image-format",), "Files written under OUTDIR/images/ (PNG is lossless).", ("png", "jpg"), "png",
           show_default=True, kinds=("mnist",)),
    Option(("--channels",), "3 (RGB, image_shape 3,28,28) or 1 (grayscale, 1,28,28).", ("3", "1"), "3",
           show_default=True, kinds=("mnist",), parse=int),
    Option(("lists",), nargs=-1, required=True, metavar="LST [LST ...]", argument=True),
    Option(("--root",), "Directory (or s3:// prefix) the list's paths are relative to.", required=True,
           id="pack_root"),
    Option(("-o", "--output"), "Output prefix: OUT gives OUT.rec and OUT.idx.", required=True),
    Option(("-v", "--verbose"), "Say which image path runs and why.", bool, False),
    Option(("path",), argument=True),
    Option(("--num-classes",), "Labels must lie in [0, N) [default: from the dataset record or classes.json].",
           int, low=1),
    Option(("--against",), "The records must be exactly this list's entries, with its labels.", metavar="LST"),
    Option(("--max-skipped",), "Fail when the pack skipped more than N images (or P% of the list), as its "
           "dataset record says.", metavar="N|P%"),
    Option(("--channel",), "Which SageMaker channel these records feed [default: train when named train*.rec]; "
           "num_training_samples is checked for train.", ("train", "validation")),
    Option(("--channel-settings",), "Also print the training job's InputDataConfig entry for these records "
           "(content type, AttributeNames for a manifest beside them).", bool, False),
    Option(("--json", "as_json"), "Print the report as JSON (every problem, no line limit).", bool, False),
    Option(("--root",), "Image root for .lst/.manifest input [default: the list's folder].", id="inspect_root"),
    Option(("--threshold",), "Near-duplicate distance in bits [default: 8].", int, low=0, high=11),
    Option(("--html", "html_out"),
           "Write an HTML page, its thumbnails in OUT-thumbs/ and every group in OUT-duplicates.jsonl.",
           metavar="OUT.html"),
    Option(("-q", "--quiet"), "No progress (the report is still printed).", bool, False, id="report_quiet"),
    Option(("shard_prefix",), argument=True),
    Option(("uri",), argument=True),
    Option(("--min-age",), "Seconds after which an upload from another machine counts as stale.", float, 3600.0,
           low=0, show_default=True),
]

_GROUPS = {"transform": _TRANSFORM, "run": _RUN, "storage": _STORAGE, "links": _LINKS, "dataset": _DATASET,
           "source": _SOURCE, None: _COMMAND}

# Table keys: the parameter name, unless two options share one (pack's --root and the manifest's).
OPTIONS: dict[str, Option] = {}


def declare(name: str | None, options: Iterable[Option]) -> None:
    """Add ``options`` to the table as group ``name`` (a face's own groups, e.g. the Processing cluster)."""
    for option in options:
        declared = dataclasses.replace(option, group=name)
        if declared.table_key in OPTIONS:
            raise ValueError(f"option {declared.table_key!r} declared twice")  # a bug in a declaration
        OPTIONS[declared.table_key] = declared


for _group, _options in _GROUPS.items():
    declare(_group, _options)

# group -> (the object's keyword in the command, "module:factory" taking the values by field)
TARGETS: dict[str, tuple[str, str]] = {
    "transform": ("spec", "imgprep.imaging.spec:TransformSpec"),
    "run": ("options", "imgprep.packing.packer:PackOptions"),
    "storage": ("storage", "imgprep.storage.stores:Storage.from_options"),
    "dataset": ("convert_options", "imgprep.convert:ConvertOptions.from_keywords"),
}
# Groups whose values also go to another group's object (the links switch serves listing and packing).
ALSO = {"links": ("run", "dataset"), "source": ("dataset",)}


def group(name: str) -> list[Option]:
    return [o for o in OPTIONS.values() if o.group == name]


def fields(*groups: str) -> dict[str, Option]:
    """The API keywords of these groups' objects, with their declarations."""
    return {o.key: o for o in OPTIONS.values() if o.group in groups and not o.argument}


def check(options: Mapping[str, Option], keywords: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords from Python, each checked as the command line checks it; an unknown one is a TypeError."""
    unknown = sorted(set(keywords) - set(options))
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(unknown)}")
    return {key: options[key].check(value) for key, value in keywords.items()}


def names(options: Iterable[Option]) -> list[str]:
    return [o.name for o in options]
