"""``imgprep verify``: check a packed dataset before a training job pays for it."""

from __future__ import annotations

import json

import click

from imgprep.errors import ImgprepError


class VerifyFailed(ImgprepError):
    """The dataset has problems; the report above lists them (exit status 1)."""


@click.command(
    epilog="""\b
Examples:
  imgprep verify out/train.rec
  imgprep verify out/train                 # OUT.rec, or shards OUT-00000.rec ...
  imgprep verify out/train.dataset.json    # also counts and SHA-256 of every shard
  imgprep verify out/val.rec --num-classes 10 --against lists/val.lst
  imgprep verify s3://bucket/data/train.rec --endpoint-url http://127.0.0.1:8333
  imgprep verify out/train.rec --max-skipped 1% --channel-settings   # before a training job
  imgprep verify out/ --channel-settings   # a prepare --format images folder: every listed image

\b
Every record is read from byte 0 (the .idx is not trusted; it is checked against what is
found): framing, headers, label width, labels in [0, num_classes) or multi-hot 0/1 vectors,
unique ids, each .idx line pointing at its record, every payload decoding with the declared
size and channels. num_classes comes from --num-classes, the dataset record, or classes.json /
hyperparameters.json beside the data. Each problem names the shard and the record
(#position, id, byte offset); with per-record checksums in the dataset record, a changed byte
is named to its record. hyperparameters.json and classes.json beside the data are held to the
records: num_training_samples (training channel), num_classes, multi_label width, image_shape
no larger than the smallest image, per-class counts.
Exit status: 0 no problems, 1 problems found (or an unreadable input), 2 usage."""
)
@click.argument("path")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Labels must lie in [0, N) [default: from the dataset record or classes.json].")
@click.option("--against", "against", default=None, metavar="LST",
              help="The records must be exactly this list's entries, with its labels.")
@click.option("-j", "--num-workers", type=click.IntRange(min=1), default=None,
              help="Decoding threads [default: all cores].")
@click.option("--max-skipped", default=None, metavar="N|P%",
              help="Fail when the pack skipped more than N images (or P%% of the list), as its dataset "
                   "record says.")
@click.option("--channel", type=click.Choice(["train", "validation"]), default=None,
              help="Which SageMaker channel these records feed [default: train when named train*.rec]; "
                   "num_training_samples is checked for train.")
@click.option("--channel-settings", is_flag=True,
              help="Also print the training job's InputDataConfig entry for these records (content type, "
                   "AttributeNames for a manifest beside them).")
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON (every problem, no line limit).")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="S3-compatible endpoint for s3:// paths [env: AWS_ENDPOINT_URL].")
def verify(path: str, num_classes: int | None, against: str | None, num_workers: int | None, max_skipped: str | None,
           channel: str | None, channel_settings: bool, as_json: bool, endpoint_url: str | None) -> None:
    """Check every record of a .rec, a shard prefix or a dataset record (local or s3://), and the
    hyperparameters.json / classes.json beside it: the check before a training job pays for it."""
    from imgprep import outputs
    from imgprep.cli.screen import echo
    from imgprep.splits.lists import read_lists
    from imgprep.storage.stores import Storage

    storage = Storage.from_options(endpoint_url=endpoint_url)
    items = read_lists([against], storage) if against else None
    report = outputs.opening(path, storage).verify(
        path, storage, num_classes=num_classes, against=items, against_name=against or "", workers=num_workers,
        max_skipped=max_skipped, train=None if channel is None else channel == "train",
        channel_settings=channel_settings)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        echo(report.format())
        if report.channel is not None:
            click.echo("SageMaker channel settings (InputDataConfig entry):")
            click.echo(json.dumps(report.channel, indent=2, ensure_ascii=False))
    if not report.ok:
        raise VerifyFailed(f"{len(report.problems)} problem(s) in {path}")
