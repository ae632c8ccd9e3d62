"""``imgprep convert`` and ``imgprep prepare``: a dataset in one of five layouts -> channels.

Both commands only hand the typed options (:mod:`imgprep.options`) and a Store to
:func:`imgprep.convert.convert` / :func:`imgprep.plan.prepare`; errors are :mod:`imgprep.errors`
classes that the ``imgprep`` entry point prints as one line.
"""

from __future__ import annotations

from typing import Any

import click

from imgprep.cli import screen
from imgprep.options import BUILD_PACK, DATASET, LINKS, PACK, KindCommand, options

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
    cls=KindCommand,
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
@options(*DATASET, "image_format", "channels", "image_root", "quiet", "endpoint_url", *LINKS,
         build=("dataset",))
def convert(kind: str, input: str, outdir: str, convert_options: Any, **given: Any) -> None:
    """Make .lst files, classes.json, hyperparameters.json (and manifests) for a dataset.

    KIND is folders, caltech, coco, mnist or manifest; INPUT is the folder (folders,
    caltech, mnist), the instances JSON (coco) or the Ground Truth output manifest.
    """
    from imgprep.convert import ImageOutput
    from imgprep.convert import convert as run
    from imgprep.storage.stores import Storage

    run(kind, input, outdir, convert_options, storage=Storage.from_options(endpoint_url=given["endpoint_url"]),
        echo=None if given["quiet"] else screen.echo,
        images=ImageOutput(channels=int(given["channels"]), image_format=given["image_format"]),
        image_root=given["image_root"])


@click.command(
    cls=KindCommand,
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
@options(*DATASET, "image_root", "output_format", *PACK, *LINKS, build=("dataset", *BUILD_PACK))
def prepare(kind: str, input: str, outdir: str, image_root: str | None, output_format: str, **built: Any) -> None:
    """Convert a dataset and write every split: OUTDIR/<split>.rec + .idx, or (--format images)
    image channels with their .lst files."""
    from imgprep.plan import prepare as run

    pack = built["options"]
    run(kind, input, outdir, options=built["convert_options"], spec=built["spec"], pack_options=pack,
        storage=built["storage"], image_root=image_root, echo=None if pack.quiet else screen.echo,
        output_format=output_format)
