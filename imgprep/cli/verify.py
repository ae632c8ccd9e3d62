"""``imgprep verify``: check a packed dataset before a training job pays for it."""

from __future__ import annotations

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

\b
Every record is read from byte 0 (the .idx is not trusted; it is checked against what is
found): framing, headers, label width, labels in [0, num_classes) or multi-hot 0/1 vectors,
unique ids, each .idx line pointing at its record, every payload decoding with the declared
size and channels. num_classes comes from --num-classes, the dataset record, or classes.json /
hyperparameters.json beside the data. Each problem names the shard and the record
(#position, id, byte offset).
Exit status: 0 no problems, 1 problems found (or an unreadable input), 2 usage."""
)
@click.argument("path")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Labels must lie in [0, N) [default: from the dataset record or classes.json].")
@click.option("--against", "against", default=None, metavar="LST",
              help="The records must be exactly this list's entries, with its labels.")
@click.option("-j", "--num-workers", type=click.IntRange(min=1), default=None,
              help="Decoding threads [default: all cores].")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="S3-compatible endpoint for s3:// paths [env: AWS_ENDPOINT_URL].")
def verify(path: str, num_classes: int | None, against: str | None, num_workers: int | None,
           endpoint_url: str | None) -> None:
    """Check every record of a .rec, a shard prefix or a dataset record (local or s3://)."""
    from imgprep.api import read_lists
    from imgprep.storage.stores import Storage
    from imgprep.verify.run import verify as run_verify

    storage = Storage.from_options(endpoint_url=endpoint_url)
    items = read_lists([against], storage) if against else None
    report = run_verify(path, num_classes=num_classes, against=items, against_name=against or "",
                        workers=num_workers, storage=storage)
    click.echo(report.format())
    if not report.ok:
        raise VerifyFailed(f"{len(report.problems)} problem(s) in {path}")
