"""``imgprep doctor``: which image path runs and why, and which optional parts are installed."""

from __future__ import annotations

import sys

import click


@click.command(epilog="Example:\n\n  imgprep doctor")
def doctor() -> None:
    """Report the image path (native libjpeg-turbo core or Pillow), Pillow build and extras.

    Exits 1 when a required part is missing or broken.
    """
    from imgprep.doctor import checks

    failed = False
    for check in checks():
        mark = "ok " if check.ok else ("!! " if check.required else "-- ")
        click.echo(f"{mark}{check.name:<11} {check.detail}")
        failed |= check.required and not check.ok
    if failed:
        sys.exit(1)
