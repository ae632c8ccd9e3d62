"""The pieces a run needs, checked up front: one line naming what is missing and how to get it.

``pip install imgprep`` brings all of them; they go missing only after ``--no-deps`` installs or
a Pillow-SIMD swap gone wrong.  Without this check a missing Pillow showed up image by image as
"skipped" and a missing boto3 as a traceback after all the work was done.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from imgprep.errors import MissingPieceError

# import name -> (what needs it, how to get it)
PIECES = {
    "PIL": ("decoding PNG, GIF, BMP, TIFF and WebP images, and the Pillow image path",
            "pip install Pillow (or Pillow-SIMD: see the README)"),
    "boto3": ("s3:// inputs and outputs", "pip install boto3"),
    "obstore": ("reading images from an s3:// root", "pip install obstore"),
}


def require(module: str) -> None:
    """Raise :class:`MissingPieceError` when ``module`` (a key of :data:`PIECES`) cannot be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
        found = False
    if not found:
        needed_for, fix = PIECES[module]
        raise MissingPieceError(f"{module} is not installed; it is needed for {needed_for}: {fix}")


def require_for(clients: Iterable[str], *, decode: bool) -> None:
    """What a run needs: the storage ``clients`` its locations name (``Store.clients``) and Pillow
    when images are decoded."""
    if decode:
        require("PIL")
    for module in dict.fromkeys(clients):
        require(module)
