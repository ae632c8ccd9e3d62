"""``imgprep convert`` and ``imgprep prepare``: a dataset in one of five layouts -> channels.

Both commands only translate options into :func:`imgprep.convert.convert` /
:func:`imgprep.convert.prepare` calls; errors are :mod:`imgprep.errors` classes that the
``imgprep`` entry point prints as one line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from imgprep.cli.options import pack_options

KINDS = ("folders", "caltech", "coco", "mnist", "manifest")

COMMON_EPILOG = """\b
Splits: --split train=0.8,val=0.2[,test=0.1] is stratified per class (iterative
stratification for multi-label data); --train-per-class N puts N images of every class in
train and the rest in val. Defaults: caltech 60 per class, mnist its own train/t10k split
(t10k -> val), others train=0.8,val=0.2. Same inputs + --seed -> byte-identical outputs.

\b
Outputs in OUTDIR (local or s3://): <split>.lst, classes.json (index -> name, counts per
split), hyperparameters.json (num_classes, num_training_samples, multi_label, image_shape),
and with --manifest-prefix <split>.manifest (augmented manifests). The manifests'
creation-date is --creation-date, else $SOURCE_DATE_EPOCH, else the inputs' newest mtime."""


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def dataset_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """KIND INPUT -o OUTDIR, split, manifest and per-source options shared by both commands."""
    options = [
        click.argument("kind", type=click.Choice(KINDS)),
        click.argument("input", metavar="INPUT"),
        click.option(
            "-o", "--output", "outdir", required=True, metavar="OUTDIR", help="Output folder or s3://bucket/prefix/."
        ),
        click.option(
            "--split",
            default=None,
            metavar="NAME=SHARE,...",
            help="Shares per split, e.g. train=0.8,val=0.2 or train=0.7,val=0.2,test=0.1.",
        ),
        click.option(
            "--train-per-class",
            type=click.IntRange(min=1),
            default=None,
            metavar="N",
            help="N images of every class to train, the rest to val (Caltech protocol).",
        ),
        click.option(
            "--stratify/--no-stratify", default=True, show_default=True, help="Keep every class's share in every split."
        ),
        click.option(
            "--shuffle/--no-shuffle",
            default=True,
            show_default=True,
            help="Random selection and order (seeded); --no-shuffle keeps input order.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for splits and order."),
        click.option(
            "--dedup",
            type=click.Choice(["off", "report", "same-split", "drop"]),
            default="report",
            show_default=True,
            help="Duplicate groups (identical files; resized, re-encoded, cropped, padded, rotated or "
            "mirrored copies): report them (leaks = groups across splits, conflicts = groups across "
            "classes), or keep every group in one split (same-split; 'drop' is its old name).",
        ),
        click.option(
            "--dedup-threshold",
            type=click.IntRange(0, 11),
            default=None,
            help="Near-duplicate distance in pHash bits [default: 8].",
        ),
        click.option(
            "--dedup-report",
            default=None,
            metavar="FILE",
            help="Write every duplicate group as JSON Lines (members, splits, which to drop to close a leak).",
        ),
        click.option(
            "--manifest-prefix",
            default=None,
            metavar="S3URI",
            help="Also write <split>.manifest with source-ref = S3URI + image path.",
        ),
        click.option(
            "--label-format",
            type=click.Choice(["multi-hot", "class-id"]),
            default="multi-hot",
            show_default=True,
            help="Multi-label manifests: [1,0,1] or [0,2].",
        ),
        click.option(
            "--attribute", default="class", show_default=True, help="Label attribute name in written manifests."
        ),
        click.option("--job-name", default=None, help="Manifest metadata job-name [default: imgprep-KIND]."),
        click.option(
            "--creation-date",
            default=None,
            metavar="ISO8601",
            help="Manifest metadata creation-date (fixed for reproducible output).",
        ),
        # folders / caltech
        click.option(
            "--extensions",
            default=None,
            metavar="EXT,...",
            help="folders/caltech: image extensions [default: jpg,jpeg,png,ppm,bmp,pgm,tif,tiff,webp].",
        ),
        click.option(
            "--class-depth",
            type=click.IntRange(min=1),
            default=None,
            help="folders: folder level that names the class [default: 1].",
        ),
        click.option(
            "--leaf-classes",
            is_flag=True,
            default=None,
            help="folders: every folder holding images is a class (nested trees).",
        ),
        click.option(
            "--classes",
            "class_list",
            default=None,
            metavar="NAME,...",
            help="folders: use only these classes, in this order.",
        ),
        click.option(
            "--drop-clutter", is_flag=True, default=None, help="caltech: leave out 257.clutter / BACKGROUND_Google."
        ),
        # coco
        click.option(
            "--categories",
            default=None,
            metavar="NAME|ID,...",
            help="coco: categories in label order [default: all, by id].",
        ),
        click.option(
            "--crowd/--no-crowd",
            "include_crowd",
            default=None,
            help="coco: count crowd annotations [default: yes, like getImgIds].",
        ),
        click.option(
            "--min-area",
            type=click.FloatRange(min=0),
            default=None,
            help="coco: ignore annotations smaller than this area.",
        ),
        click.option(
            "--keep-empty",
            is_flag=True,
            default=None,
            help="coco: keep images with none of the categories (all-zero labels).",
        ),
        # mnist
        click.option(
            "--variant",
            type=click.Choice(["fashion", "digits"]),
            default=None,
            help="mnist: class names [default: fashion].",
        ),
        # manifest
        click.option(
            "--root",
            default=None,
            metavar="[S3PREFIX=]DIR",
            help="manifest: local copy of the images (of S3PREFIX, default the common prefix).",
        ),
        click.option(
            "--source-attribute", default=None, help="manifest: label attribute of the input [default: detected]."
        ),
        click.option(
            "--source-label-format",
            type=click.Choice(["class-id", "multi-hot"]),
            default=None,
            help="manifest: how multi-label input lists labels [default: class-id].",
        ),
    ]
    for option in reversed(options):
        f = option(f)

    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        source = {
            "extensions": _csv(kw.pop("extensions")),
            "class_depth": kw.pop("class_depth"),
            "leaf_classes": kw.pop("leaf_classes") or None,
            "classes": _csv(kw.pop("class_list")),
            "drop_clutter": kw.pop("drop_clutter") or None,
            "categories": _csv(kw.pop("categories")),
            "include_crowd": kw.pop("include_crowd"),
            "min_area": kw.pop("min_area"),
            "keep_empty": kw.pop("keep_empty") or None,
            "variant": kw.pop("variant"),
            "root": kw.pop("root"),
            "attribute": kw.pop("source_attribute"),
            "label_format": kw.pop("source_label_format"),
        }
        kw["convert_options"] = {
            "split": kw.pop("split"),
            "train_per_class": kw.pop("train_per_class"),
            "stratify": kw.pop("stratify"),
            "shuffle": kw.pop("shuffle"),
            "seed": kw.pop("seed"),
            "dedup": kw.pop("dedup"),
            "dedup_threshold": kw.pop("dedup_threshold"),
            "dedup_report": kw.pop("dedup_report"),
            "manifest_prefix": kw.pop("manifest_prefix"),
            "label_format": kw.pop("label_format"),
            "attribute": kw.pop("attribute"),
            "job_name": kw.pop("job_name"),
            "creation": kw.pop("creation_date"),
            "source_options": {k: v for k, v in source.items() if v is not None},
        }
        return f(**kw)

    return wrapper


@click.command(
    epilog=COMMON_EPILOG
    + """

\b
Examples:
  imgprep convert folders grocery/ -o lists/ --leaf-classes --split train=0.8,val=0.2
  imgprep convert caltech 256_ObjectCategories/ -o lists/          # 60 per class
  imgprep convert coco instances_val2017.json -o lists/ \\
      --categories person,bicycle,car,motorcycle,airplane --split train=0.5,val=0.5 \\
      --manifest-prefix s3://bucket/coco/val2017/ --label-format class-id --image-root val2017/
  imgprep convert folders photos/ -o lists/ --dedup-report dups.jsonl   # every duplicate group
  imgprep convert mnist fashion-mnist/ -o fmnist/ --image-format png"""
)
@dataset_options
@click.option(
    "--image-format",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="mnist: files written under OUTDIR/images/ (PNG is lossless).",
)
@click.option(
    "--channels",
    type=click.Choice(["3", "1"]),
    default="3",
    show_default=True,
    help="mnist: 3 (RGB, image_shape 3,28,28) or 1 (grayscale, 1,28,28).",
)
@click.option(
    "--image-root",
    default=None,
    metavar="DIR",
    help="coco: the images folder, so the duplicate check (--dedup) can read the images.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    default=None,
    help="S3-compatible endpoint for s3:// paths [env: AWS_ENDPOINT_URL].",
)
def convert(
    kind: str,
    input: str,
    outdir: str,
    image_format: str,
    channels: str,
    image_root: str | None,
    quiet: bool,
    endpoint_url: str | None,
    convert_options: dict[str, Any],
) -> None:
    """Make .lst files, classes.json, hyperparameters.json (and manifests) for a dataset.

    KIND is folders, caltech, coco, mnist or manifest; INPUT is the folder (folders,
    caltech, mnist), the instances JSON (coco) or the Ground Truth output manifest.
    """
    from imgprep.convert import convert as run
    from imgprep.storage.stores import Storage

    echo = None if quiet else click.echo
    run(
        kind,
        input,
        outdir,
        channels=int(channels),
        image_format=image_format,
        echo=echo,
        storage=Storage.from_options(endpoint_url=endpoint_url),
        image_root=image_root,
        **convert_options,
    )


@click.command(
    epilog=COMMON_EPILOG
    + """

\b
Examples:
  imgprep prepare mnist fashion-mnist/ -o out/ --encoding png --split train=0.7,val=0.3
  imgprep prepare caltech 256_ObjectCategories/ -o s3://bucket/caltech/ --resize 256
  imgprep prepare folders grocery/ -o out/ --leaf-classes --size 348x348 --fit pad
  imgprep prepare coco instances_val2017.json --image-root val2017/ -o out/ \\
      --categories person,bicycle,car,motorcycle,airplane

\b
Then OUTDIR/<split>.rec + .idx: one RecordIO file per channel (multi-label data is packed
with its multi-hot labels). mnist is packed straight from the IDX arrays."""
)
@dataset_options
@click.option(
    "--image-root",
    default=None,
    metavar="DIR",
    help="Folder the image paths are relative to (coco: the images folder).",
)
@pack_options
def prepare(
    kind: str,
    input: str,
    outdir: str,
    image_root: str | None,
    spec: Any,
    options: Any,
    convert_options: dict[str, Any],
) -> None:
    """Convert a dataset and pack every split into OUTDIR/<split>.rec + .idx."""
    from imgprep.convert import prepare as run

    echo = None if options.quiet else click.echo
    run(kind, input, outdir, spec=spec, options=options, image_root=image_root, echo=echo, **convert_options)
