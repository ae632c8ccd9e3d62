"""Class-folder trees: ``root/<class>/.../image`` (torchvision's ImageFolder convention).

Class index = position of the class in sorted order (by path components), so the same tree
always gives the same ids.  ``class_depth`` picks which folder level names the class (1 =
ImageFolder); ``leaf_classes`` makes every folder that directly holds images a class (the
grocery dataset's ``Fruit/Apple/Golden-Delicious``), with the top folder kept as the class's
coarse group.  Hidden files and folders are skipped, files with other extensions are counted
and ignored.

Symlinks are followed while they stay inside the root (:mod:`imgprep.storage.roots`); a link
that leads out of it is not followed, so its images are not listed (pack would refuse them),
and the notes name it with the switch that allows it (``follow_outside``).  Only a real loop (a folder
that is its own ancestor, by device and inode) is a loop.  A link to a sibling class folder is
a class folder of its own: its images are listed again under the link's name, so every class
keeps its images and its label.  Names that ``.lst`` or manifest files cannot carry (control
characters, bytes that are not UTF-8) are skipped and named in the notes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from imgprep.errors import SourceError, UsageError
from imgprep.formats.names import describe_look_alikes, look_alikes, suggest
from imgprep.formats.paths import unrepresentable
from imgprep.sources.loaded import ClassInfo, Dataset, require_folder
from imgprep.sources.registry import Kind, register
from imgprep.storage.roots import NOTE_EXAMPLES, RootGuard, outside_note

EXAMPLES = 3  # ignored files named in the note
# Most times one folder may be walked through different symlinked paths (each is a class path).
MAX_VISITS = 64

# torchvision's IMG_EXTENSIONS
DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def normalize_extensions(extensions: Sequence[str] | None) -> tuple[str, ...]:
    """``["JPG", ".png"]`` -> ``(".jpg", ".png")``."""
    if not extensions:
        return DEFAULT_EXTENSIONS
    out = []
    for ext in extensions:
        ext = ext.strip().lower()
        if not ext:
            continue
        out.append(ext if ext.startswith(".") else "." + ext)
    if not out:
        raise UsageError("--extensions names no extension")
    return tuple(out)


@dataclass
class WalkResult:
    """Image files found under a root, as relative ``/``-separated paths split into folders."""

    files: list[tuple[tuple[str, ...], str]]  # (folder components, file name)
    skipped: int
    loops: int
    mtime: float
    skipped_examples: list[str] = field(default_factory=list)  # the first few, to name them
    outside: int = 0  # symlinks leading out of the root, not followed
    outside_examples: list[str] = field(default_factory=list)  # the first few, to name them
    bad_names: list[str] = field(default_factory=list)  # reasons, one per unusable name


def walk_images(root: str, extensions: Sequence[str], *, exclude_top: Sequence[str] = (),
                follow_outside: bool = False) -> WalkResult:
    """Sorted walk of ``root`` (following symlinks that stay inside it, or every symlink with
    ``follow_outside``), images only."""
    exts = tuple(extensions)
    guard = RootGuard(root, follow_outside=follow_outside)
    result = WalkResult([], 0, 0, 0.0)
    visits: dict[tuple[int, int], int] = {}
    excluded = set(exclude_top)

    def visit(path: str, parts: tuple[str, ...], ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            result.loops += 1
            return
        visits[key] = visits.get(key, 0) + 1
        if visits[key] > MAX_VISITS:
            # links to links to the same folder multiply: 2 links per level, 30 levels = 1e9 walks
            raise SourceError(
                f"this folder is reached through symlinks more than {MAX_VISITS} times; "
                "the links make the tree too large to walk",
                path=path,
            )
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise SourceError(f"cannot list folder ({exc.strerror})", path=path) from None
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
                leaves = entry.is_symlink() and guard.escape(entry.path) is not None
            except OSError:
                continue
            if not (is_dir or is_file):
                continue  # a broken symlink, a socket: not an image
            if is_file and os.path.splitext(entry.name)[1].lower() not in exts:
                result.skipped += 1
                if len(result.skipped_examples) < EXAMPLES:
                    rel = "/".join((*parts, entry.name))
                    result.skipped_examples.append(ascii(rel) if unrepresentable(rel) else rel)
                continue
            if is_dir and not parts and entry.name in excluded:
                continue
            if leaves:
                result.outside += 1
                if len(result.outside_examples) < NOTE_EXAMPLES:
                    rel = "/".join((*parts, entry.name))
                    result.outside_examples.append(ascii(rel) if unrepresentable(rel) else rel)
                continue
            problem = unrepresentable(entry.name)
            if problem:
                result.bad_names.append(f"{os.path.join(path, entry.name)!a}: {problem}")
                continue
            if is_dir:
                subdirs.append(entry)
            else:
                result.files.append((parts, entry.name))
                try:
                    result.mtime = max(result.mtime, entry.stat().st_mtime)
                except OSError:
                    pass
        for entry in subdirs:
            visit(entry.path, (*parts, entry.name), ancestors | {key})

    visit(root, (), frozenset())
    return result


def _nested_note(keyed: Sequence[tuple[tuple[str, ...], str]], keys: Sequence[tuple[str, ...]], class_depth: int,
                 leaf_classes: bool) -> str | None:
    """A warning when most images lie in subfolders below the class level (a nested tree such
    as the grocery dataset's ``Fruit/Apple/…`` read as a few coarse classes by default)."""
    if leaf_classes:
        return None
    leaves = {tuple(rel.split("/")[:-1]) for _, rel in keyed}
    deeper = sum(1 for _, rel in keyed if rel.count("/") > class_depth)
    if deeper * 2 <= len(keyed) or len(leaves) <= len(keys):
        return None
    example = next(rel for _, rel in keyed if rel.count("/") > class_depth)
    return (f"{deeper} of {len(keyed)} images lie in subfolders below the class folders (e.g. {example}): "
            f"read as {len(keys)} coarse class(es); --leaf-classes makes each of the {len(leaves)} folders that "
            f"hold images a class (the top folder kept as its group), or --class-depth N picks the level")


def _sort_key(key: tuple[str, ...]) -> tuple[str, ...]:
    return key


def load_folders(
    root: str,
    *,
    extensions: Sequence[str] | None = None,
    class_depth: int = 1,
    leaf_classes: bool = False,
    classes: Sequence[str] | None = None,
    exclude_top: Sequence[str] = (),
    kind: str = "folders",
    follow_links_outside_root: bool = False,
) -> Dataset:
    """Read a class-folder tree into a single-label :class:`Dataset`.

    ``classes`` fixes the class order (and selects those folders only); names are class
    folder paths relative to ``root`` (``Fruit/Apple`` at depth 2) or their last component
    when that is unambiguous.  ``follow_links_outside_root`` lists files reached through
    symlinks that lead out of ``root`` (the user's ``--follow-links-outside-root``).
    """
    if class_depth < 1:
        raise UsageError(f"--class-depth must be at least 1, got {class_depth}")
    require_folder(root, "expected the folder holding one folder per class")
    walk = walk_images(root, normalize_extensions(extensions), exclude_top=exclude_top,
                       follow_outside=follow_links_outside_root)
    keyed: list[tuple[tuple[str, ...], str]] = []
    outside = 0
    for parts, name in walk.files:
        if leaf_classes:
            if not parts:
                outside += 1
                continue
            key = parts
        else:
            if len(parts) < class_depth:
                outside += 1
                continue
            key = parts[:class_depth]
        keyed.append((key, "/".join((*parts, name))))
    if not keyed:
        exts = ", ".join(normalize_extensions(extensions))
        where = f"at class-folder depth {class_depth}" if not leaf_classes else "inside class folders"
        raise SourceError(f"no images found {where} (extensions: {exts})", path=root)

    keys = sorted({k for k, _ in keyed}, key=_sort_key)
    leaf_names = [k[-1] for k in keys]
    unique_leaf = len(set(leaf_names)) == len(leaf_names)
    names = [k[-1] if unique_leaf else "/".join(k) for k in keys]
    if classes:
        wanted = list(classes)
        lookup: dict[str, tuple[str, ...]] = {}
        for k, n in zip(keys, names):
            lookup["/".join(k)] = k
            lookup.setdefault(n, k)
        chosen: list[tuple[str, ...]] = []
        for c in wanted:
            k = lookup.get(c.strip("/"))
            if k is None:
                hint = suggest(c.strip("/"), lookup)
                raise SourceError(f"class {c!r} from --classes has no images{hint}", path=root)
            if k in chosen:
                raise UsageError(f"class {c!r} is listed twice in --classes")
            chosen.append(k)
        keys = chosen
        names = [k[-1] if unique_leaf else "/".join(k) for k in keys]
    index = {k: i for i, k in enumerate(keys)}
    paths: list[str] = []
    labels: list[int] = []
    for key, rel in keyed:
        i = index.get(key)
        if i is None:
            continue
        paths.append(rel)
        labels.append(i)
    infos = [ClassInfo(name=n, path="/".join(k), group=k[0] if len(k) > 1 else None) for n, k in zip(names, keys)]
    notes = []
    if walk.skipped:
        named = ", ".join(walk.skipped_examples) + (", ..." if walk.skipped > len(walk.skipped_examples) else "")
        notes.append(f"{walk.skipped} non-image file(s) ignored: {named}")
    if outside:
        notes.append(f"{outside} image(s) outside class folders ignored")
    if walk.loops:
        notes.append(f"{walk.loops} folder symlink loop(s) not followed")
    if walk.outside:
        notes.append(outside_note(walk.outside, walk.outside_examples))
    if walk.bad_names:
        notes.append(f"{len(walk.bad_names)} file or folder name(s) skipped; first: {walk.bad_names[0]}")
    coarse = _nested_note(keyed, keys, class_depth, leaf_classes)
    if coarse:
        notes.append(coarse)
    alike = look_alikes(names)
    if alike:
        notes.append(describe_look_alikes(alike))
    return Dataset(
        kind=kind,
        origin=root,
        classes=infos,
        paths=paths,
        labels=np.asarray(labels, dtype=np.int64),
        root=root,
        mtime=walk.mtime,
        notes=notes,
        links_checked=True,
    )


register(Kind("folders", load_folders, "folder of class folders",
              options=("extensions", "class_depth", "leaf_classes", "classes")))
