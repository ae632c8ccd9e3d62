"""The options of every face, declared once (:mod:`imgprep.options.table`).

The ``imgprep`` command (:mod:`imgprep.cli`) and the Processing entrypoint
(:mod:`imgprep.processing.command`) make their click parameters with :func:`options`; each command
receives the typed objects built once from them: ``spec`` (a ``TransformSpec``), ``options`` (a
``PackOptions``), ``convert_options`` (a ``ConvertOptions``) and ``storage`` (the run's Store).
The Python API checks its keywords against the same declarations (:func:`check`).
"""

from __future__ import annotations

from imgprep.options.declare import Option
from imgprep.options.faces import KindCommand, given, options
from imgprep.options.table import OPTIONS, check, declare, fields
from imgprep.options.types import ByteSize, Size2D

# The option sets commands share: a dataset to read, a pack to run (with its Store), the links switch.
DATASET = ("kind", "input", "outdir", "@dataset", "@source")
PACK = ("@transform", "@run", "@storage")
LINKS = ("@links",)
BUILD_PACK = ("transform", "run", "storage")

__all__ = ["BUILD_PACK", "DATASET", "LINKS", "OPTIONS", "PACK", "ByteSize", "KindCommand", "Option", "Size2D",
           "check", "declare", "fields", "given", "options"]
