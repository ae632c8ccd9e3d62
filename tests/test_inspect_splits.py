"""``inspect`` of a folder reads every split in it, records where a split has them, its list where
it has none, and says what it left out."""

from __future__ import annotations

import imgfactory
import inspect_fixture

from imgprep.formats.lst import LstItem, dumps
from imgprep.inspect.run import inspect


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
    findings = inspect(str(folder), workers=2)
    assert [s.name for s in findings.collection.splits] == ["train", "val"]
    assert findings.to_json()["summary"]["images"] == 13
    assert findings.leaks == 1
    assert findings.collection.left_out == ["train.manifest: not read (split 'train' is read from train.rec)"]
