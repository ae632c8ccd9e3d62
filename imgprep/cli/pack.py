"""``imgprep pack``: .lst files + images → RecordIO (the im2rec.py rec-mode successor)."""

from __future__ import annotations

from typing import Any

import click

from imgprep.options import BUILD_PACK, LINKS, PACK, options


@click.command(
    epilog="""\b
Examples:
  # one .rec + .idx per channel, shorter side 256, JPEG q95 (the usual SageMaker input)
  imgprep pack train.lst --root images/ -o out/train --resize 256

\b
  # exact 348x348 by centre crop; multi-label list packed with its label vector
  imgprep pack train.lst --root images/ -o out/train --size 348x348 --fit crop --pack-label

\b
  # several lists into one file, shards of 10,000 records, straight to S3
  imgprep pack a.lst b.lst --root images/ -o s3://bucket/data/train --shard-records 10000

\b
  # store the original files untouched (im2rec --pass-through)
  imgprep pack train.lst --root images/ -o out/train --pass-through

\b
Output: OUT.rec + OUT.idx (or OUT-00000.rec/.idx ... when sharded), each shard published as it
fills (.rec, then .idx), then OUT.dataset.json, the commit point naming every shard with its
checksums. --resume continues a killed run from its last good shard or checkpoint. One run per
output at a time (OUT.lock). Unreadable images are skipped and listed in OUT.skipped.tsv;
--strict fails.
Exit status: 0 done (skipped images reported), 1 error, 2 usage, 3 bad image with --strict,
130 interrupted."""
)
@options("lists", "pack_root", "output", "verbose", *PACK, *LINKS, build=BUILD_PACK)
def pack(lists: tuple[str, ...], root: str, output: str, verbose: bool, **built: Any) -> None:
    """Pack the images of one or more .lst files into MXNet RecordIO.

    Records are written in list order with the list's index as record id, so the output is
    byte-identical for any number of workers. Several lists are concatenated (their indices
    must not collide).
    """
    from imgprep.packing.packer import pack as run_pack
    from imgprep.splits.stream import ListStream

    spec, options, storage = built["spec"], built["options"], built["storage"]
    items = ListStream(lists, storage)
    if verbose:
        from imgprep.imaging.transform import select

        chosen = select(options.native)
        click.echo(f"image path: {chosen.name} — {chosen.reason}", err=True)
        click.echo(f"transform: {spec.describe()}", err=True)
    summary = run_pack(items, root, output, spec, options, storage=storage)
    if not options.quiet:
        click.echo(summary.format(), err=True)
