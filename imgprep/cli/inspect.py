"""``imgprep inspect``: class balance, sizes, duplicates and leakage, as text, JSON or a page."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from imgprep.cli.screen import echo
from imgprep.errors import ImageError
from imgprep.options import options


@click.command(
    epilog="""\b
Examples:
  imgprep inspect out/                      # every split in a folder (.rec, else .lst)
  imgprep inspect out/train.rec
  imgprep inspect lists/val.lst --root photos/
  imgprep inspect out/ --html report.html   # a page, its thumbnails in report-thumbs/
  imgprep inspect out/ --json > report.json
  imgprep inspect out/ --dedup-report dups.jsonl   # every duplicate group, val ids to drop
  imgprep inspect s3://bucket/out/          # through the same Store as pack and verify

\b
Duplicates come in groups: identical files, and copies that are resized, re-encoded,
grayscale, cropped by up to 10% from any sides, letterboxed, rotated or flipped (DCT pHash
within --threshold bits, crop windows within 7, confirmed by a check hash and, for colour
images, by their Cb/Cr colour layout). Each group is
one representative and its copies, never a chain. A group in two splits is a LEAK: the validation
score counts images the model trained on; a group with two labels is a label CONFLICT.
Flat images (blank frames, swatches) match by identical bytes only. `convert/prepare
--dedup` run the same search and print the same summary. The search is multi-index
hashing into a union-find: no pair lists, memory ~ number of images.
Exit status: 0 (even with duplicates: read the report), 1 error, 2 usage."""
)
@options("path", "inspect_root", "threshold", "as_json", "html_out", "dedup_report", "num_workers", "report_quiet",
         "progress", "endpoint_url")
def inspect(path: str, as_json: bool, html_out: str | None, dedup_report: str | None, **given: Any) -> None:
    """Per-split class histograms, image sizes, exact and near duplicates, and leaks across splits."""
    from imgprep import outputs
    from imgprep.layout.meter import meter
    from imgprep.storage.stores import Storage

    if html_out:
        from imgprep.requirements import require

        require("PIL")  # the page's thumbnails: say so before the scan, not after it
    storage = Storage.from_options(endpoint_url=given["endpoint_url"])
    with meter("inspect", None, "img", quiet=given["quiet"], progress=given["progress"], leave=False) as bar:
        try:
            findings = outputs.opening(path, storage).inspect(path, storage, root=given["root"],
                                                              threshold=given["threshold"],
                                                              workers=given["num_workers"], tick=bar.update,
                                                              total=bar.set_total)
        except ImageError as exc:
            if given["root"] is None and not path.endswith(".rec"):
                raise ImageError(f"{exc.message} (without --root, the images are looked for beside the list, "
                                 f"under {_folder(path)}/; give --root DIR)",
                                 path=exc.path, line=exc.line) from None
            raise
    if dedup_report:
        with open(dedup_report, "w", encoding="utf-8") as out:
            out.writelines(findings.report_lines())
        click.echo(f"wrote {dedup_report} ({findings.summary.groups if findings.summary else 0:,} group(s))",
                   err=True)
    if html_out:
        from imgprep.inspect.html import write_html

        written = write_html(findings, html_out, workers=given["num_workers"])
        click.echo(f"wrote {', '.join(written)}", err=True)
    if as_json:
        click.echo(json.dumps(findings.to_json(), indent=1))
    else:
        from imgprep.inspect.text import render

        echo(render(findings))


def _folder(path: str) -> str:
    """Where inspect looks for a list's images without --root: the list's folder (a folder: itself)."""
    return path.rstrip("/") if os.path.isdir(path) else os.path.dirname(path.rstrip("/")) or "."
