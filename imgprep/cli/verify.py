"""``imgprep verify``: check a packed dataset before a training job pays for it."""

from __future__ import annotations

import json
from typing import Any

import click

from imgprep.cli.screen import echo
from imgprep.errors import ImgprepError
from imgprep.options import options


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
@options("path", "num_classes", "against", "num_workers", "max_skipped", "channel", "channel_settings", "as_json",
         "endpoint_url", "report_quiet", "progress")
def verify(path: str, against: str | None, channel: str | None, as_json: bool, **given: Any) -> None:
    """Check every record of a .rec, a shard prefix or a dataset record (local or s3://), and the
    hyperparameters.json / classes.json beside it: the check before a training job pays for it."""
    from imgprep import outputs
    from imgprep.splits.lists import read_lists
    from imgprep.storage.stores import Storage

    storage = Storage.from_options(endpoint_url=given["endpoint_url"])
    items = read_lists([against], storage) if against else None
    report = outputs.opening(path, storage).verify(
        path, storage, num_classes=given["num_classes"], against=items, against_name=against or "",
        workers=given["num_workers"], max_skipped=given["max_skipped"],
        progress=False if given["quiet"] else given["progress"],
        train=None if channel is None else channel == "train", channel_settings=given["channel_settings"])
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False))
    else:
        echo(report.format())
        if report.channel is not None:
            _print_channel(report.channel)
    if not report.ok:
        raise VerifyFailed(f"{len(report.problems)} problem(s) in {path}")


def _print_channel(channel: dict[str, Any]) -> None:
    """Each entry as it goes into a training job's InputDataConfig list (the manifest one an alternative)."""
    if "images" in channel:  # an image-format folder: four channels, and the manifests' two
        click.echo("SageMaker channel settings (InputDataConfig entries, File mode):")
        click.echo(json.dumps(channel["images"], indent=2, ensure_ascii=False))
        if "manifest" in channel:
            click.echo("Or, in Pipe mode through the augmented manifests of the written images (InputDataConfig "
                       "entries):")
            click.echo(json.dumps(channel["manifest"], indent=2, ensure_ascii=False))
        return
    click.echo("SageMaker channel settings (InputDataConfig entry):")
    click.echo(json.dumps(channel["recordio"], indent=2, ensure_ascii=False))
    if "manifest" in channel:
        click.echo("Or, reading the augmented manifest beside the records instead (InputDataConfig entry):")
        click.echo(json.dumps(channel["manifest"], indent=2, ensure_ascii=False))
    if "note" in channel:
        click.echo(f"note: {channel['note']}")
