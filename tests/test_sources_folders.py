"""Class-folder trees (flat, nested, leaf classes) and Caltech-101/256 layouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgprep.errors import SourceError, UsageError
from imgprep.sources.caltech import load_caltech
from imgprep.sources.folders import load_folders

JPEG = b"\xff\xd8\xff\xe0fake"  # the sources never decode; any bytes do


def touch(root: Path, rel: str, data: bytes = JPEG) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def flat_tree(root: Path) -> None:
    for cls, n in (("dog", 3), ("cat", 2), ("emu", 1)):
        for i in range(n):
            touch(root, f"{cls}/{i}.jpg")
    touch(root, "cat/sub/deep.PNG")  # nested images belong to the top class (ImageFolder)
    touch(root, "cat/notes.txt")
    touch(root, ".hidden/x.jpg")
    touch(root, "dog/.x.jpg")
    touch(root, "loose.jpg")  # outside any class folder


def grocery_tree(root: Path) -> None:
    for rel, n in (
        ("Fruit/Apple/Golden-Delicious", 3),
        ("Fruit/Apple/Granny-Smith", 2),
        ("Fruit/Banana", 4),
        ("Packages/Juice/Bravo-Apple-Juice", 2),
        ("Vegetables/Leek", 2),
    ):
        for i in range(n):
            touch(root, f"{rel}/{i}.jpg")


def test_imagefolder_convention(tmp_path) -> None:
    flat_tree(tmp_path)
    data = load_folders(str(tmp_path))
    assert [c.name for c in data.classes] == ["cat", "dog", "emu"]
    pairs = sorted(zip(data.paths, data.labels.tolist()))
    assert pairs == [
        ("cat/0.jpg", 0),
        ("cat/1.jpg", 0),
        ("cat/sub/deep.PNG", 0),
        ("dog/0.jpg", 1),
        ("dog/1.jpg", 1),
        ("dog/2.jpg", 1),
        ("emu/0.jpg", 2),
    ]
    assert any("non-image" in n for n in data.notes)
    assert any("outside class folders" in n for n in data.notes)


def test_extensions_and_explicit_class_order(tmp_path) -> None:
    flat_tree(tmp_path)
    data = load_folders(str(tmp_path), extensions=["png"])
    assert data.paths == ["cat/sub/deep.PNG"]
    data = load_folders(str(tmp_path), classes=["emu", "dog"])
    assert [c.name for c in data.classes] == ["emu", "dog"]
    assert sorted(zip(data.labels.tolist(), data.paths))[0] == (0, "emu/0.jpg")
    with pytest.raises(SourceError, match="'yak' from --classes has no images"):
        load_folders(str(tmp_path), classes=["yak"])
    with pytest.raises(UsageError, match="twice"):
        load_folders(str(tmp_path), classes=["dog", "dog"])


def test_symlink_loops_are_visited_once(tmp_path) -> None:
    flat_tree(tmp_path)
    os.symlink("..", tmp_path / "dog" / "up")
    os.symlink(tmp_path / "emu", tmp_path / "emu2")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "dog" / "broken.jpg")
    data = load_folders(str(tmp_path))
    assert len(data.paths) == len(set(data.paths))
    # emu2 is a link to a sibling, not a loop: a class of its own, listing emu's files again
    assert [c.name for c in data.classes] == ["cat", "dog", "emu", "emu2"]
    labelled = {(data.classes[label].name, path) for label, path in zip(data.labels.tolist(), data.paths)}
    assert ("emu", "emu/0.jpg") in labelled and ("emu2", "emu2/0.jpg") in labelled
    assert [n for n in data.notes if "loop" in n] == ["1 folder symlink loop(s) not followed"]


def test_link_to_a_later_sibling_keeps_both_classes(tmp_path) -> None:
    """The link sorts first: the class it points at must not vanish nor lend it its label."""
    for name in ("bird", "zebra"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "zebra", tmp_path / "a_link")
    data = load_folders(str(tmp_path))
    pairs = sorted((data.classes[i].name, p) for i, p in zip(data.labels.tolist(), data.paths))
    assert pairs == [("a_link", "a_link/zebra.jpg"), ("bird", "bird/bird.jpg"), ("zebra", "zebra/zebra.jpg")]
    assert not any("loop" in n for n in data.notes)


def test_symlinks_leading_outside_the_root_are_not_followed(tmp_path) -> None:
    root = tmp_path / "root"
    flat_tree(root)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.jpg").write_bytes(b"x")
    os.symlink(secret, root / "stolen")
    os.symlink(secret / "key.jpg", root / "cat" / "key.jpg")
    data = load_folders(str(root))
    assert not any("key" in p or "stolen" in p for p in data.paths)
    [note] = [n for n in data.notes if "outside the image root" in n]
    assert note.startswith("2 path(s) reached through a symlink leading outside the image root not listed")
    assert "stolen, cat/key.jpg" in note and "--follow-links-outside-root" in note


def test_follow_links_outside_root_lists_them(tmp_path) -> None:
    root = tmp_path / "root"
    flat_tree(root)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.jpg").write_bytes(b"x")
    os.symlink(secret / "key.jpg", root / "cat" / "key.jpg")
    data = load_folders(str(root), follow_links_outside_root=True)
    assert "cat/key.jpg" in data.paths
    assert not any("outside the image root" in n for n in data.notes)


def test_names_lst_cannot_carry_are_skipped_with_a_reason(tmp_path) -> None:
    flat_tree(tmp_path)
    (tmp_path / "cat" / "evil\n1\t0\tx.jpg").write_bytes(b"x")
    (tmp_path / "dog" / "tab\there.jpg").write_bytes(b"x")
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"caf\xe9"))
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9", b"1.jpg"), "wb") as fh:
        fh.write(b"x")
    data = load_folders(str(tmp_path))
    assert all("\t" not in p and "\n" not in p for p in data.paths)
    assert "caf" not in " ".join(c.name for c in data.classes)
    note = next(n for n in data.notes if "name(s) skipped" in n)
    assert note.startswith("3 file or folder name(s) skipped; first: ")


def test_empty_folder_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(SourceError, match="no images found") as info:
        load_folders(str(tmp_path))
    assert str(info.value).startswith(str(tmp_path))
    with pytest.raises(SourceError, match="does not exist"):
        load_folders(str(tmp_path / "nope"))


def test_leaf_classes_keep_the_coarse_groups(tmp_path) -> None:
    grocery_tree(tmp_path)
    data = load_folders(str(tmp_path), leaf_classes=True)
    assert [c.name for c in data.classes] == [
        "Golden-Delicious",
        "Granny-Smith",
        "Banana",
        "Bravo-Apple-Juice",
        "Leek",
    ]
    assert [c.group for c in data.classes] == ["Fruit", "Fruit", "Fruit", "Packages", "Vegetables"]
    assert data.classes[0].path == "Fruit/Apple/Golden-Delicious"
    assert data.labels.tolist().count(2) == 4


def test_class_depth(tmp_path) -> None:
    grocery_tree(tmp_path)
    data = load_folders(str(tmp_path), class_depth=2)
    assert [c.path for c in data.classes] == ["Fruit/Apple", "Fruit/Banana", "Packages/Juice", "Vegetables/Leek"]
    assert data.labels.tolist().count(0) == 5
    coarse = load_folders(str(tmp_path))
    assert [c.name for c in coarse.classes] == ["Fruit", "Packages", "Vegetables"]


def test_ambiguous_leaf_names_use_the_path(tmp_path) -> None:
    touch(tmp_path, "a/x/1.jpg")
    touch(tmp_path, "b/x/1.jpg")
    data = load_folders(str(tmp_path), leaf_classes=True)
    assert [c.name for c in data.classes] == ["a/x", "b/x"]


def caltech256(root: Path, per_class: int = 3) -> None:
    for i, name in enumerate(["ak47", "american-flag", "backpack"], 1):
        for j in range(per_class):
            touch(root, f"{i:03d}.{name}/{i:03d}_{j:04d}.jpg")
    for j in range(per_class + 2):
        touch(root, f"257.clutter/257_{j:04d}.jpg")
    touch(root, "002.american-flag/RENAME2", b"x")


def test_caltech256_names_ids_and_clutter(tmp_path) -> None:
    caltech256(tmp_path / "256_ObjectCategories")
    data = load_caltech(str(tmp_path))  # the parent of the archive folder works too
    assert [c.name for c in data.classes] == ["ak47", "american-flag", "backpack", "clutter"]
    assert [c.source_id for c in data.classes] == [1, 2, 3, 257]
    assert data.labels.tolist().count(3) == 5
    dropped = load_caltech(str(tmp_path / "256_ObjectCategories"), drop_clutter=True)
    assert [c.name for c in dropped.classes] == ["ak47", "american-flag", "backpack"]
    assert len(dropped.paths) == 9


def test_caltech_class_folder_linked_from_elsewhere(tmp_path) -> None:
    root = tmp_path / "256_ObjectCategories"
    caltech256(root)
    caltech256(tmp_path / "store")
    (root / "004.bat").symlink_to(tmp_path / "store" / "003.backpack")
    (root / "001.ak47" / "far.jpg").symlink_to(tmp_path / "store" / "001.ak47" / "001_0000.jpg")
    with pytest.raises(SourceError, match=r"'004\.bat' is a symlink leading outside the image root.*"
                                          r"--follow-links-outside-root"):
        load_caltech(str(root))
    data = load_caltech(str(root), follow_links_outside_root=True)
    assert [c.name for c in data.classes] == ["ak47", "american-flag", "backpack", "bat", "clutter"]
    assert "001.ak47/far.jpg" in data.paths and data.labels.tolist().count(3) == 3


def test_caltech101_layout(tmp_path) -> None:
    for name in ("BACKGROUND_Google", "Faces", "Faces_easy", "accordion"):
        touch(tmp_path, f"{name}/image_0001.jpg")
    data = load_caltech(str(tmp_path))
    assert [c.name for c in data.classes] == ["BACKGROUND_Google", "Faces", "Faces_easy", "accordion"]
    assert [c.name for c in load_caltech(str(tmp_path), drop_clutter=True).classes] == [
        "Faces",
        "Faces_easy",
        "accordion",
    ]


def test_not_caltech(tmp_path) -> None:
    flat_tree(tmp_path)
    with pytest.raises(SourceError, match="not a Caltech-101/256 layout"):
        load_caltech(str(tmp_path))


def test_caltech_classic_split(tmp_path) -> None:
    from imgprep.api import convert

    caltech256(tmp_path / "in", per_class=8)
    result = convert("caltech", str(tmp_path / "in"), str(tmp_path / "out"), train_per_class=6)
    assert len(result.lists["train"]) == 4 * 6
    assert len(result.lists["val"]) == 3 * 2 + 4
    assert result.hyperparameters["num_classes"] == "4"
    assert result.hyperparameters["num_training_samples"] == "24"


def test_caltech_defaults_to_60_per_class(tmp_path) -> None:
    from imgprep.convert import make_plan

    caltech256(tmp_path)
    plan = make_plan(load_caltech(str(tmp_path)))
    assert plan is not None and plan.train_per_class == 60 and plan.names == ["train", "val"]
