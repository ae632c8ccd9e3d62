"""One policy for symlinks that lead outside the image root, decided when the lists are made.

A file reached through such a link is not listed (the notes say so and name the switch), so the
duplicate check never reads it and ``prepare`` packs every listed image; with
``--follow-links-outside-root`` the lists name it and pack reads it, on every face.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import imgprep
from imgprep.cli.main import main
from imgprep.errors import ImageError
from imgprep.formats.dataset import from_json
from imgprep.formats.lst import read_lst
from imgprep.storage.local import LocalStore
from imgprep.storage.roots import RootGuard

SWITCH = "--follow-links-outside-root"


def run(*args: str) -> tuple[int, str]:
    """``imgprep ARGS`` as a user runs it: exit status and everything printed."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, out.getvalue().decode() + err.getvalue().decode()


def linked_tree(tmp_path: Path, imgfactory) -> Path:
    """cat/ and dog/ with three images each, plus cat/away.jpg: a link to an exact copy of
    cat/0.jpg that lies outside the root."""
    root = tmp_path / "photos"
    for cls, seeds in (("cat", (1, 2, 3)), ("dog", (4, 5, 6))):
        for i, seed in enumerate(seeds):
            imgfactory.write(root / cls / f"{i}.jpg", imgfactory.jpeg(48, 40, seed=seed))
    away = imgfactory.write(tmp_path / "elsewhere" / "copy.jpg", (root / "cat" / "0.jpg").read_bytes())
    os.symlink(away, root / "cat" / "away.jpg")
    return root


def listed(outdir: Path) -> list[str]:
    return sorted(item.path for name in ("train.lst", "val.lst") for item in read_lst(str(outdir / name)))


def records(prefix: Path) -> int:
    path = str(prefix) + ".dataset.json"
    return from_json(Path(path).read_bytes(), path).records


def test_convert_does_not_list_a_link_leading_out_and_says_how_to_allow_it(tmp_path, imgfactory,
                                                                           monkeypatch) -> None:
    root = linked_tree(tmp_path, imgfactory)
    seen = reads(monkeypatch)
    code, out = run("convert", "folders", str(root), "-o", str(tmp_path / "lists"))
    assert code == 0, out
    assert "cat/away.jpg" not in listed(tmp_path / "lists") and len(listed(tmp_path / "lists")) == 6
    assert "1 path(s) reached through a symlink leading outside the image root not listed" in out
    assert "cat/away.jpg" in out and SWITCH in out
    # the duplicate check read every listed image and not the link (an exact copy of cat/0.jpg)
    images = [path for path in seen if path.endswith(".jpg")]
    assert len(images) == 6 and not any(p.endswith("away.jpg") for p in images)


def test_prepare_packs_every_listed_image(tmp_path, imgfactory) -> None:
    root = linked_tree(tmp_path, imgfactory)
    out_dir = tmp_path / "out"
    code, out = run("prepare", "folders", str(root), "-o", str(out_dir), "--split", "train=0.5,val=0.5")
    assert code == 0, out
    assert out.count(" 0 skipped") == 2 and "outside the image root" in out
    assert records(out_dir / "train") + records(out_dir / "val") == 6 == len(listed(out_dir))
    assert not list(out_dir.glob("*.skipped.tsv"))


def test_the_switch_lists_and_packs_the_link(tmp_path, imgfactory) -> None:
    root = linked_tree(tmp_path, imgfactory)
    out_dir = tmp_path / "out"
    code, out = run("prepare", "folders", str(root), "-o", str(out_dir), "--split", "train=0.5,val=0.5",
                    "--dedup", "off", SWITCH)
    assert code == 0, out
    assert "cat/away.jpg" in listed(out_dir)
    assert records(out_dir / "train") + records(out_dir / "val") == 7
    assert "outside the image root" not in out


@pytest.mark.parametrize("native", ["--native", "--no-native"])
def test_pack_refuses_the_link_unless_the_switch_is_given(tmp_path, imgfactory, native) -> None:
    root = linked_tree(tmp_path, imgfactory)
    lst = tmp_path / "all.lst"
    lst.write_text("".join(f"{i}\t0\t{p}\n" for i, p in enumerate(["cat/0.jpg", "cat/away.jpg", "dog/0.jpg"])))
    code, out = run("pack", str(lst), "--root", str(root), "-o", str(tmp_path / "refused"), native, "-j", "2")
    assert code == 0, out
    assert records(tmp_path / "refused") == 2
    skipped = (tmp_path / "refused.skipped.tsv").read_text()
    assert "cat/away.jpg\tsymlink leads outside the image root" in skipped and SWITCH in skipped
    code, out = run("pack", str(lst), "--root", str(root), "-o", str(tmp_path / "followed"), native, "-j", "2", SWITCH)
    assert code == 0, out
    assert records(tmp_path / "followed") == 3 and not (tmp_path / "followed.skipped.tsv").exists()


def reads(monkeypatch) -> list[str]:
    """Every image file the run reads through the guard or the local store, by path."""
    seen: list[str] = []
    guard_read, store_read = RootGuard.read, LocalStore.read_bytes

    def guarded(self, path):
        seen.append(str(path))
        return guard_read(self, path)

    def stored(self, uri):
        seen.append(str(uri))
        return store_read(self, uri)

    monkeypatch.setattr(RootGuard, "read", guarded)
    monkeypatch.setattr(LocalStore, "read_bytes", stored)
    return seen


def test_named_files_are_decided_the_same_way(tmp_path, imgfactory, monkeypatch) -> None:
    """A manifest's source-refs mapped to a local folder: the link is not listed, so neither the
    duplicate check nor pack meets it."""
    root = linked_tree(tmp_path, imgfactory)
    seen = reads(monkeypatch)
    refs = ["cat/0.jpg", "cat/1.jpg", "cat/away.jpg", "dog/0.jpg", "dog/1.jpg"]
    rows = [json.dumps({"source-ref": f"s3://bucket/pets/{ref}", "label": int(ref.startswith("dog"))})
            for ref in refs]
    (tmp_path / "pets.manifest").write_text("\n".join(rows) + "\n")
    out_dir = tmp_path / "out"
    code, out = run("prepare", "manifest", str(tmp_path / "pets.manifest"), "-o", str(out_dir),
                    "--root", f"s3://bucket/pets/={root}", "--split", "train=0.5,val=0.5",
                    "--dedup", "same-split")  # a pass before the pack that reads the files (report has none)
    assert code == 0, out
    assert "cat/away.jpg" not in listed(out_dir) and len(listed(out_dir)) == 4
    assert "1 path(s) reached through a symlink leading outside the image root not listed" in out
    images = [path for path in seen if path.endswith(".jpg")]
    assert len(images) >= 4 and not any(p.endswith(("away.jpg", "copy.jpg")) for p in images)
    assert records(out_dir / "train") + records(out_dir / "val") == 4 and out.count(" 0 skipped") == 2


def test_python_faces_take_the_same_switch(tmp_path, imgfactory) -> None:
    root = linked_tree(tmp_path, imgfactory)
    converted = imgprep.convert("folders", root, tmp_path / "lists", dedup="off", follow_links_outside_root=True)
    assert "cat/away.jpg" in converted.dataset.paths
    result = imgprep.prepare("folders", root, tmp_path / "out", dedup="off", follow_links_outside_root=True)
    assert sum(summary.records for summary in result.packed.values()) == 7
    lists = [tmp_path / "lists" / "train.lst", tmp_path / "lists" / "val.lst"]
    refused = imgprep.pack(lists, root, tmp_path / "p1")
    followed = imgprep.pack(lists, root, tmp_path / "p2", follow_links_outside_root=True)
    assert (refused.records, refused.skipped, followed.records, followed.skipped) == (6, 1, 7, 0)

def test_the_guard_reads_nothing_a_pack_would_refuse(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "fifo", root / "pipe.jpg")
    with pytest.raises(ImageError, match="outside the image root"):
        RootGuard(str(root)).read(str(root / "pipe.jpg"))
    with pytest.raises(ImageError, match="not a regular file"):  # followed, still never blocks
        RootGuard(str(root), follow_outside=True).read(str(root / "pipe.jpg"))


def test_processing_job_takes_the_switch(tmp_path, imgfactory) -> None:
    from imgprep.processing.command import processing

    root = linked_tree(tmp_path, imgfactory)
    out_dir = tmp_path / "out"
    config = tmp_path / "job.json"
    config.write_text(json.dumps({"command": "prepare", "kind": "folders", "input": str(root), "output": str(out_dir),
                                  "split": "train=0.5,val=0.5", "dedup": "off", "num-workers": 1, "quiet": True,
                                  "follow-links-outside-root": True, "opt-ml": str(tmp_path / "optml")}))
    result = CliRunner().invoke(processing, ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "cat/away.jpg" in listed(out_dir)
    assert records(out_dir / "train") + records(out_dir / "val") == 7
