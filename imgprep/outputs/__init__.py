"""Output formats: what ``prepare`` writes for each split, and how verify and inspect open it.

One object per format, registered by name (Pillow's plugin registry is the model: one module per
format and one registration)::

    FORMATS = {"recordio": RecordIO(), ...}   # filled by register(), builtins on first use

A format is an :class:`~imgprep.outputs.base.OutputFormat`; :mod:`imgprep.outputs.recordio` is
the first.  To add one (say ``images``, SageMaker's image channels):

1. write ``imgprep/outputs/<name>.py`` with a subclass of :class:`OutputFormat` — where a split's
   output goes (:meth:`~OutputFormat.split_output`), how it is written and published
   (:meth:`~OutputFormat.write_split`, given the ``before_publish`` hook that retires the old
   generation), what an earlier run left there for ``--resume`` (:meth:`~OutputFormat.earlier_list`),
   how a split's output is retired (:meth:`~OutputFormat.retire`), and how verify and inspect
   open it (:meth:`~OutputFormat.accepts`, :meth:`~OutputFormat.verify`, :meth:`~OutputFormat.inspect`);
2. register it: one line in :data:`BUILTIN` below (loaded on first use, so the CLI's start stays
   cheap), or ``register(MyFormat())`` from outside the package.

The prepare executor (:mod:`imgprep.plan`) asks the format; nothing else names ``recordio``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgprep.plugins import Registry

if TYPE_CHECKING:
    from imgprep.outputs.base import OutputFormat
    from imgprep.storage.base import Store

DEFAULT = "recordio"
# The formats shipped with imgprep: name -> the module that registers it when imported.
BUILTIN = {"recordio": "imgprep.outputs.recordio", "images": "imgprep.outputs.images"}
_REGISTRY: Registry[OutputFormat] = Registry("output format", BUILTIN)
FORMATS = _REGISTRY.items
register, names = _REGISTRY.register, _REGISTRY.names


def get(name: str = DEFAULT) -> OutputFormat:
    """The format called ``name``; an unknown name is a usage error naming the known ones."""
    return _REGISTRY.get(name)


def opening(path: str, storage: Store) -> OutputFormat:
    """The format whose output ``path`` is (verify, inspect): the first that accepts it, else the default."""
    for name in names():
        candidate = get(name)
        if name != DEFAULT and candidate.accepts(path, storage):
            return candidate
    return get(DEFAULT)
