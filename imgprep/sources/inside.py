"""Leaving out, at list time, the listed files that pack would refuse: those whose path leads
outside the local image root through a symlink (:mod:`imgprep.storage.roots`).

The folder walk decides while it walks; sources that name their files (a manifest's
``source-ref``s mapped to a folder, COCO's ``file_name``s under ``--image-root``) are checked
here once they are loaded, so the duplicate check and pack see the same images the lists hold.
"""

from __future__ import annotations

import os

import numpy as np

from imgprep.errors import SourceError
from imgprep.formats.paths import unrepresentable
from imgprep.sources.loaded import Dataset
from imgprep.storage.roots import ALLOW_SWITCH, NOTE_EXAMPLES, RootGuard, outside_note


def keep_inside(dataset: Dataset, root: str | None, *, follow_outside: bool = False) -> None:
    """Drop from ``dataset`` the paths that lead out of the local folder ``root`` through a
    symlink, with one note naming the first few (nothing to do without a local root, for
    in-memory images, with ``follow_outside`` or after a loader that already checked)."""
    if (follow_outside or dataset.links_checked or dataset.pixels is not None or not root
            or not os.path.isdir(root)):
        return
    guard = RootGuard(root)
    keep = [i for i, rel in enumerate(dataset.paths) if guard.escape(os.path.join(root, rel)) is None]
    dropped = len(dataset.paths) - len(keep)
    dataset.links_checked = True
    if not dropped:
        return
    if not keep:
        raise SourceError(f"every listed image is reached through a symlink leading outside the image root; "
                          f"{ALLOW_SWITCH} reads them if the links are meant", path=root)
    kept = set(keep)
    examples = [rel for i, rel in enumerate(dataset.paths) if i not in kept][:NOTE_EXAMPLES]
    dataset.paths = [dataset.paths[i] for i in keep]
    dataset.labels = dataset.labels[np.asarray(keep, dtype=np.int64)]
    dataset.notes.append(outside_note(dropped, [ascii(p) if unrepresentable(p) else p for p in examples]))
