"""``inspect`` of a folder reads every split in it, records where a split has them, its list where
it has none, and says what it left out."""

from __future__ import annotations

import imgfactory
import inspect_fixture

from imgprep.formats.lst import LstItem, dumps
from imgprep.inspect.run import inspect
from imgprep.storage.stores import Storage


def test_a_folder_with_one_split_packed_and_one_listed_inspects_both(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    train = [(i, i % 3, imgfactory.jpeg(96, 72, seed=i)) for i in range(9)]
    inspect_fixture._write(folder, "train", train)
    items = []
    for i in range(4):
        path = f"val/{i}.jpg"
        data = train[2][2] if i == 0 else imgfactory.jpeg(96, 72, seed=50 + i)  # val/0.jpg copies train id 2
        imgfactory.write(folder / path, data)
        items.append(LstItem(100 + i, (float(i % 3),), path))
    (folder / "val.lst").write_text(dumps(items))
    (folder / "train.manifest").write_text("")
    findings = inspect(str(folder), storage=Storage(), workers=2)
    assert [s.name for s in findings.collection.splits] == ["train", "val"]
    assert findings.to_json()["summary"]["images"] == 13
    assert findings.leaks == 1
    assert findings.collection.left_out == ["train.manifest: not read (split 'train' is read from train.rec)"]


def test_the_list_beside_records_is_checked_up_front_and_read_for_the_paths_shown(tmp_path):
    """A packed split's ``.lst`` only names its records' paths: it is validated when the folder is
    read (a bad line fails there, naming it), but held as a compact id -> path table built when a
    report first shows a path, not as one object per entry (a million-record list cost ~450 MB)."""
    import pytest

    from imgprep.errors import FormatError
    from imgprep.inspect.collect import Paths, collect

    folder = tmp_path / "data"
    folder.mkdir()
    train = [(i, i % 3, imgfactory.jpeg(96, 72, seed=i)) for i in range(6)]
    train.append((6, 0, train[1][2]))  # id 6 copies id 1
    inspect_fixture._write(folder, "train", train)
    (split,) = collect(str(folder)).splits
    assert split.items == [] and split._paths is None
    findings = inspect(str(folder), storage=Storage(), workers=1)
    (group,) = findings.to_json()["duplicate_groups"]
    shown = {image["path"] for image in group["images"]}
    names = inspect_fixture.CLASSES
    assert shown == {f"{names[1]}/0001.jpg", f"{names[0]}/0006.jpg"}  # the list's paths, looked up by id
    paths = Paths([LstItem(7, (0.0,), "a/ü.jpg"), LstItem(3, (1.0,), "b/x.jpg")])
    assert (paths.get(3), paths.get(7), paths.get(5)) == ("b/x.jpg", "a/ü.jpg", None)
    lst = folder / "train.lst"
    lst.write_text(lst.read_text() + "x\t0\tbad.jpg\n")
    with pytest.raises(FormatError, match=r"train\.lst"):
        collect(str(folder))
