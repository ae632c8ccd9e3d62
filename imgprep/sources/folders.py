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


def _shown(rel: str) -> str:
    return ascii(rel) if unrepresentable(rel) else rel


class _Walker:
    """One sorted walk: the loop and visit bookkeeping shared by every folder it enters."""

    def __init__(self, root: str, exts: tuple[str, ...], excluded: set[str], follow_outside: bool) -> None:
        self.exts = exts
        self.excluded = excluded
        self.guard = RootGuard(root, follow_outside=follow_outside)
        self.result = WalkResult([], 0, 0, 0.0)
        self.visits: dict[tuple[int, int], int] = {}

    def _enter(self, path: str, ancestors: frozenset[tuple[int, int]]) -> tuple[int, int] | None:
        """The folder's (device, inode), or None when it cannot be entered (gone, or a loop)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            self.result.loops += 1
            return None
        self.visits[key] = self.visits.get(key, 0) + 1
        if self.visits[key] > MAX_VISITS:
            # links to links to the same folder multiply: 2 links per level, 30 levels = 1e9 walks
            raise SourceError(
                f"this folder is reached through symlinks more than {MAX_VISITS} times; "
                "the links make the tree too large to walk",
                path=path,
            )
        return key

    def _skip_file(self, parts: tuple[str, ...], name: str) -> None:
        self.result.skipped += 1
        if len(self.result.skipped_examples) < EXAMPLES:
            self.result.skipped_examples.append(_shown("/".join((*parts, name))))

    def _skip_outside(self, parts: tuple[str, ...], name: str) -> None:
        self.result.outside += 1
        if len(self.result.outside_examples) < NOTE_EXAMPLES:
            self.result.outside_examples.append(_shown("/".join((*parts, name))))

    def _add_file(self, parts: tuple[str, ...], entry: os.DirEntry[str]) -> None:
        self.result.files.append((parts, entry.name))
        try:
            self.result.mtime = max(self.result.mtime, entry.stat().st_mtime)
        except OSError:
            pass

    def _take(self, path: str, parts: tuple[str, ...], entry: os.DirEntry[str]) -> bool:
        """Record one entry; True when it is a folder to walk into."""
        if entry.name.startswith("."):
            return False
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
            leaves = entry.is_symlink() and self.guard.escape(entry.path) is not None
        except OSError:
            return False
        if not (is_dir or is_file):
            return False  # a broken symlink, a socket: not an image
        if is_file and os.path.splitext(entry.name)[1].lower() not in self.exts:
            self._skip_file(parts, entry.name)
            return False
        if is_dir and not parts and entry.name in self.excluded:
            return False
        if leaves:
            self._skip_outside(parts, entry.name)
            return False
        problem = unrepresentable(entry.name)
        if problem:
            self.result.bad_names.append(f"{os.path.join(path, entry.name)!a}: {problem}")
            return False
        if not is_dir:
            self._add_file(parts, entry)
        return is_dir

    def visit(self, path: str, parts: tuple[str, ...], ancestors: frozenset[tuple[int, int]]) -> None:
        key = self._enter(path, ancestors)
        if key is None:
            return
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise SourceError(f"cannot list folder ({exc.strerror})", path=path) from None
        subdirs = [entry for entry in entries if self._take(path, parts, entry)]
        for entry in subdirs:
            self.visit(entry.path, (*parts, entry.name), ancestors | {key})


def walk_images(root: str, extensions: Sequence[str], *, exclude_top: Sequence[str] = (),
                follow_outside: bool = False) -> WalkResult:
    """Sorted walk of ``root`` (following symlinks that stay inside it, or every symlink with
    ``follow_outside``), images only."""
    walker = _Walker(root, tuple(extensions), set(exclude_top), follow_outside)
    walker.visit(root, (), frozenset())
    return walker.result


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


def _class_keyed(files: Sequence[tuple[tuple[str, ...], str]], class_depth: int,
                 leaf_classes: bool) -> tuple[list[tuple[tuple[str, ...], str]], int]:
    """(class key, relative path) per image in a class folder, and how many lie outside one."""
    keyed: list[tuple[tuple[str, ...], str]] = []
    outside = 0
    for parts, name in files:
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
    return keyed, outside


def _class_names(keys: Sequence[tuple[str, ...]], unique_leaf: bool) -> list[str]:
    return [k[-1] if unique_leaf else "/".join(k) for k in keys]


def _choose_classes(keys: list[tuple[str, ...]], names: list[str], classes: Sequence[str],
                    root: str) -> list[tuple[str, ...]]:
    """The ``--classes`` folders in their given order (by path, or by last component)."""
    lookup: dict[str, tuple[str, ...]] = {}
    for k, n in zip(keys, names):
        lookup["/".join(k)] = k
        lookup.setdefault(n, k)
    chosen: list[tuple[str, ...]] = []
    for c in classes:
        k = lookup.get(c.strip("/"))
        if k is None:
            hint = suggest(c.strip("/"), lookup)
            raise SourceError(f"class {c!r} from --classes has no images{hint}", path=root)
        if k in chosen:
            raise UsageError(f"class {c!r} is listed twice in --classes")
        chosen.append(k)
    return chosen


def _walk_notes(walk: WalkResult, outside: int) -> list[str]:
    """What the walk skipped, one note per reason."""
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
    return notes


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
    keyed, outside = _class_keyed(walk.files, class_depth, leaf_classes)
    if not keyed:
        exts = ", ".join(normalize_extensions(extensions))
        where = f"at class-folder depth {class_depth}" if not leaf_classes else "inside class folders"
        raise SourceError(f"no images found {where} (extensions: {exts})", path=root)

    keys = sorted({k for k, _ in keyed}, key=_sort_key)
    leaf_names = [k[-1] for k in keys]
    unique_leaf = len(set(leaf_names)) == len(leaf_names)
    names = _class_names(keys, unique_leaf)
    if classes:
        keys = _choose_classes(keys, names, classes, root)
        names = _class_names(keys, unique_leaf)
    index = {k: i for i, k in enumerate(keys)}
    labelled = [(rel, index[key]) for key, rel in keyed if key in index]
    infos = [ClassInfo(name=n, path="/".join(k), group=k[0] if len(k) > 1 else None) for n, k in zip(names, keys)]
    notes = _walk_notes(walk, outside)
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
        paths=[rel for rel, _ in labelled],
        labels=np.asarray([i for _, i in labelled], dtype=np.int64),
        root=root,
        mtime=walk.mtime,
        notes=notes,
        links_checked=True,
    )


register(Kind("folders", load_folders, "folder of class folders",
              options=("extensions", "class_depth", "leaf_classes", "classes")))
