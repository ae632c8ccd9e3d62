"""``imgprep inspect``: class balance, sizes, duplicates and leakage, as text, JSON or a page."""

from __future__ import annotations

import json
import sys

import click


@click.command(
    epilog="""\b
Examples:
  imgprep inspect out/                      # every split in a folder (.rec, else .lst)
  imgprep inspect out/train.rec
  imgprep inspect lists/val.lst --root photos/
  imgprep inspect out/ --html report.html   # one self-contained page + report-contact.png
  imgprep inspect out/ --json > report.json

\b
Duplicates: exact ones share their encoded bytes; near ones (resized, re-encoded, lightly
cropped or mirrored copies) have DCT pHashes within --threshold bits. A pair in two splits
is a LEAK: the validation score counts images the model trained on. The search is
multi-index hashing (4 bands of 16 bits), sub-quadratic, ~32 bytes per image.
Exit status: 0 (even with duplicates: read the report), 1 error, 2 usage."""
)
@click.argument("path")
@click.option("--root", default=None, help="Image root for .lst/.manifest input [default: the list's folder].")
@click.option("--threshold", type=click.IntRange(0, 11), default=None,
              help="Near-duplicate distance in bits [default: 10].")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--html", "html_out", default=None, metavar="OUT.html",
              help="Write one self-contained HTML page (and OUT-contact.png).")
@click.option("-j", "--num-workers", type=click.IntRange(min=1), default=None,
              help="Decoding threads [default: all cores].")
def inspect(path: str, root: str | None, threshold: int | None, as_json: bool, html_out: str | None,
            num_workers: int | None) -> None:
    """Per-split class histograms, image sizes, exact and near duplicates, and leaks across splits."""
    from tqdm import tqdm

    from imgprep.inspect.run import inspect as run_inspect

    if html_out:
        from imgprep.requirements import require

        require("PIL")  # the page's thumbnails: say so before the scan, not after it
    with tqdm(unit="img", disable=not sys.stderr.isatty(), leave=False, desc="inspect") as bar:
        findings = run_inspect(path, root=root, threshold=threshold, workers=num_workers, tick=bar.update)
    if html_out:
        from imgprep.inspect.html import write_html

        written = write_html(findings, html_out)
        click.echo(f"wrote {', '.join(written)}", err=True)
    if as_json:
        click.echo(json.dumps(findings.to_json(), indent=1))
    else:
        from imgprep.cli.screen import echo
        from imgprep.inspect.text import render

        echo(render(findings))
