"""A Ground Truth output manifest (single- or multi-label) as a dataset.

Images are ``s3://`` URIs; ``.lst`` paths are made relative to a prefix (the longest common
folder of all ``source-ref``s, or the one given as ``--root s3://bucket/prefix/=DIR``), and
``DIR`` is the local copy of that prefix the packer reads.  Class names come from the
records' metadata (``class-name`` / ``class-map``).
"""

from __future__ import annotations

import os

import numpy as np

from imgprep.errors import SourceError, UsageError, reading
from imgprep.formats.manifest import parse_manifest
from imgprep.formats.names import describe_look_alikes, look_alikes
from imgprep.formats.paths import bounded_lines, check_relative_path, quote
from imgprep.sources.loaded import ClassInfo, Dataset, check_label_matrix
from imgprep.sources.registry import ROOT, Kind, register

# Longest manifest line read (one Ground Truth record is well under a kilobyte).
MAX_LINE = 1 << 24


def common_folder(refs: list[str]) -> str:
    """The longest prefix ending in ``/`` shared by every reference."""
    prefix = os.path.commonprefix(refs)  # noqa: RUF071 - URIs, cut back to the last "/" below
    return prefix[: prefix.rfind("/") + 1]


def parse_root(root: str | None) -> tuple[str | None, str | None]:
    """``"s3://b/p/=DIR"`` -> ``("s3://b/p/", "DIR")``; ``"DIR"`` -> ``(None, "DIR")``."""
    if not root:
        return None, None
    if "=" in root and "://" in root.split("=", 1)[0]:
        prefix, local = root.split("=", 1)
        if not local:
            raise UsageError(f"--root {root!r} maps a prefix to an empty folder")
        return prefix if prefix.endswith("/") else prefix + "/", local
    return None, root


def load_manifest(
    path: str, *, root: str | None = None, attribute: str | None = None, label_format: str = "class-id"
) -> Dataset:
    """Read a Ground Truth manifest; ``root`` maps its images' prefix to a local folder."""
    with reading(path, "manifest file", SourceError), open(path, encoding="utf-8") as fh:
        lines = bounded_lines(fh, MAX_LINE, path)
        parsed = parse_manifest(lines, path=path, attribute=attribute, label_format=label_format)
    prefix, local = parse_root(root)
    if prefix is None:
        prefix = common_folder(parsed.refs)
    else:
        for i, ref in enumerate(parsed.refs):
            if not ref.startswith(prefix):
                raise SourceError(f"record {i + 1}: {quote(ref)} is not under --root prefix {prefix}", path=path)
    paths = [ref[len(prefix) :] for ref in parsed.refs]
    for i, rel in enumerate(paths):
        problem = check_relative_path(rel)
        if problem:
            raise SourceError(f"record {i + 1}: {problem} (below {prefix or 'the manifest'})", path=path)
    seen_ids = [c for row in parsed.labels for c in row]
    num_classes = max([*seen_ids, *parsed.names, -1]) + 1
    if num_classes == 0:
        raise SourceError("no record has a label", path=path)
    classes = [ClassInfo(name=parsed.names.get(i, str(i)), source_id=i) for i in range(num_classes)]
    if parsed.multi_label:
        check_label_matrix(len(paths), num_classes, path)
        labels = np.zeros((len(paths), num_classes), dtype=np.uint8)
        for r, row in enumerate(parsed.labels):
            labels[r, row] = 1
    else:
        labels = np.asarray([row[0] for row in parsed.labels], dtype=np.int64)
    notes = [f"label attribute {parsed.attribute!r}, images under {prefix or '(no common prefix)'}"]
    unnamed = [str(i) for i in range(num_classes) if i not in parsed.names]
    if unnamed:
        notes.append(f"no name in the metadata for class(es) {', '.join(unnamed[:10])}")
    alike = look_alikes([c.name for c in classes])
    if alike:
        notes.append(describe_look_alikes(alike))
    return Dataset(
        kind="manifest",
        origin=path,
        classes=classes,
        paths=paths,
        labels=labels,
        multi_label=parsed.multi_label,
        root=local,
        mtime=os.path.getmtime(path),
        notes=notes,
    )


register(Kind("manifest", load_manifest, "manifest file",
              options=("root", "source_attribute", "source_label_format"),
              image_root=ROOT, local_input=True))
