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
  imgprep inspect out/ --dedup-report dups.jsonl   # every duplicate group, val ids to drop

\b
Duplicates come in groups: identical files, and copies that are resized, re-encoded,
grayscale, cropped by up to 10% from any sides, letterboxed, rotated or flipped (DCT pHash
within --threshold bits, crop windows within 7, confirmed by a check hash). Each group is
one representative and its copies, never a chain. A group in two splits is a LEAK: the validation
score counts images the model trained on; a group with two labels is a label CONFLICT.
Flat images (blank frames, swatches) match by identical bytes only. `convert/prepare
--dedup` run the same search and print the same summary. The search is multi-index
hashing into a union-find: no pair lists, memory ~ number of images.
Exit status: 0 (even with duplicates: read the report), 1 error, 2 usage."""
)
@click.argument("path")
@click.option("--root", default=None, help="Image root for .lst/.manifest input [default: the list's folder].")
@click.option("--threshold", type=click.IntRange(0, 11), default=None,
              help="Near-duplicate distance in bits [default: 8].")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--html", "html_out", default=None, metavar="OUT.html",
              help="Write one self-contained HTML page (and OUT-contact.png).")
@click.option("--dedup-report", default=None, metavar="FILE",
              help="Write every duplicate group as JSON Lines (members, splits, which to drop to close a leak).")
@click.option("-j", "--num-workers", type=click.IntRange(min=1), default=None,
              help="Decoding threads [default: all cores].")
def inspect(path: str, root: str | None, threshold: int | None, as_json: bool, html_out: str | None,
            dedup_report: str | None, num_workers: int | None) -> None:
    """Per-split class histograms, image sizes, exact and near duplicates, and leaks across splits."""
    from tqdm import tqdm

    from imgprep.inspect.run import inspect as run_inspect

    if html_out:
        from imgprep.requirements import require

        require("PIL")  # the page's thumbnails: say so before the scan, not after it
    with tqdm(unit="img", disable=not sys.stderr.isatty(), leave=False, desc="inspect") as bar:
        findings = run_inspect(path, root=root, threshold=threshold, workers=num_workers, tick=bar.update)
    if dedup_report:
        with open(dedup_report, "w", encoding="utf-8") as out:
            out.writelines(findings.report_lines())
        click.echo(f"wrote {dedup_report} ({findings.summary.groups if findings.summary else 0:,} group(s))",
                   err=True)
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
