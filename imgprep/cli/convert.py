"""``imgprep convert`` and ``imgprep prepare``: a dataset in one of five layouts -> channels.

Both commands only hand the typed options (:mod:`imgprep.options`) and a Store to
:func:`imgprep.convert.convert` / :func:`imgprep.plan.prepare`; errors are :mod:`imgprep.errors`
classes that the ``imgprep`` entry point prints as one line.
"""

from __future__ import annotations

from typing import Any

import click

from imgprep.cli import screen
from imgprep.options import dataset_options, links_option, pack_options

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
@links_option
def convert(
    kind: str,
    input: str,
    outdir: str,
    image_format: str,
    channels: str,
    image_root: str | None,
    quiet: bool,
    endpoint_url: str | None,
    convert_options: Any,
) -> None:
    """Make .lst files, classes.json, hyperparameters.json (and manifests) for a dataset.

    KIND is folders, caltech, coco, mnist or manifest; INPUT is the folder (folders,
    caltech, mnist), the instances JSON (coco) or the Ground Truth output manifest.
    """
    from imgprep.convert import ImageOutput
    from imgprep.convert import convert as run
    from imgprep.storage.stores import Storage

    run(
        kind,
        input,
        outdir,
        convert_options,
        storage=Storage.from_options(endpoint_url=endpoint_url),
        echo=None if quiet else screen.echo,
        images=ImageOutput(channels=int(channels), image_format=image_format),
        image_root=image_root,
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
  imgprep prepare folders grocery/ -o s3://bucket/grocery/ --format images --size 348x348

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
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["recordio", "images"]),
    default="recordio",
    show_default=True,
    help="recordio: OUTDIR/<split>.rec + .idx. images: the image channels OUTDIR/train/, validation/ "
         "(test/) with train_lst/train.lst ... (content type application/x-image; val -> validation).",
)
@pack_options
@links_option
def prepare(
    kind: str,
    input: str,
    outdir: str,
    image_root: str | None,
    output_format: str,
    spec: Any,
    options: Any,
    convert_options: Any,
) -> None:
    """Convert a dataset and write every split: OUTDIR/<split>.rec + .idx, or (--format images)
    image channels with their .lst files."""
    from imgprep.plan import prepare as run

    run(kind, input, outdir, options=convert_options, spec=spec, pack_options=options, storage=options.storage,
        image_root=image_root, echo=None if options.quiet else screen.echo, output_format=output_format)
