"""``imgprep merge`` (join RecordIO shards) and ``imgprep cleanup`` (abort stale S3 uploads)."""

from __future__ import annotations

import click

from imgprep.options import options


@click.command(
    epilog="""\b
Examples:
  imgprep merge out/train -o out/train-all
  imgprep merge s3://bucket/data/train -o s3://bucket/data/train-all

\b
Reads exactly the shards PREFIX.dataset.json names (an unfinished pack is refused: finish it
with pack --resume) and checks each against it (records, CRC-32s, SHA-256) before writing
anything, then writes OUT.dataset.json too; else PREFIX-00000.rec/.idx, PREFIX-00001.rec/.idx, ... found by listing, and
writes OUT.rec and OUT.idx (offsets shifted, keys kept). S3 to S3 joins server-side
(UploadPartCopy); only shards under 5 MiB pass through this machine."""
)
@options("shard_prefix", "output", "quiet", "progress", "endpoint_url")
def merge(shard_prefix: str, output: str, quiet: bool, progress: bool | None, endpoint_url: str | None) -> None:
    """Join RecordIO shards into one .rec with a rebuilt .idx."""
    from imgprep.layout.merge import merge_shards
    from imgprep.storage.stores import Storage

    summary = merge_shards(shard_prefix, output, Storage.from_options(endpoint_url=endpoint_url), quiet=quiet,
                           progress=progress)
    if not quiet:
        server = f", {summary.copied_bytes:,} copied server-side" if summary.copied_bytes else ""
        click.echo(
            f"merged {summary.shards} shards, {summary.records:,} records, {summary.bytes:,} bytes{server} "
            f"→ {summary.outputs[0]}",
            err=True,
        )


@click.command(
    epilog="""\b
Examples:
  imgprep cleanup s3://bucket/data/
  imgprep cleanup s3://bucket/data/train --min-age 0

\b
Only uploads imgprep marked as its own are touched (each has a marker object under
.imgprep-uploads/ next to its key). One is stale when the process that started it ran on this
machine and is gone, or when it is older than --min-age; never while a writer that may be
alive, on any machine, holds its output's lock (PREFIX.lock). Markers whose upload is gone (a
writer killed between completing it and deleting the marker) are removed. For a local folder or prefix, the
temporary .part files of killed runs are removed (not those of a run still holding its lock);
published shards stay for pack --resume."""
)
@options("uri", "min_age", "endpoint_url")
def cleanup(uri: str, min_age: float, endpoint_url: str | None) -> None:
    """Remove what interrupted runs left under URI: S3 uploads, local temporary files."""
    from imgprep.layout.files import remove_leftovers
    from imgprep.storage.stores import Storage

    storage = Storage.from_options(endpoint_url=endpoint_url)
    # Each store says what interrupted runs left: S3 its stale uploads, local files their temporaries.
    done = storage.cleanup_stale_uploads(uri, min_age=min_age)
    for line in done.aborted:
        click.echo(f"aborted {line}")
    for line in done.markers:
        click.echo(f"removed {line} (its upload is gone)")
    for line in done.held:
        click.echo(f"spared {line}: a live writer holds its output's lock", err=True)
    removed = remove_leftovers(uri, storage)
    for path in removed:
        click.echo(f"removed {path}")
    spared = f", {len(done.held)} spared under a live writer's lock" if done.held else ""
    click.echo(f"{len(done.aborted)} stale upload(s) aborted{spared}, {len(removed)} temporary file(s) removed "
               f"under {uri}", err=True)
