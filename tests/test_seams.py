"""Where the work of issues 27, 28 and 32 meets, tried from outside as a user would: prepare's
duplicate pass under --progress, a bare command group's usage error, verify's hint on another
channel than training."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest
from conftest import run_imgprep

import imgprep

LINE = re.compile(r"^imgprep: (?P<label>[\w -]+): (?P<done>[\d,]+)/(?P<total>[\d,]+) img")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seams") / "photos"
    imgfactory.class_tree(root, ["ant", "bee", "cow"], 4, sizes=((40, 32), (36, 30)))
    return root


def _lines(err: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for m in filter(None, map(LINE.match, err.splitlines())):
        found.setdefault(m.group("label"), []).append(m.group(0))
    return found


def test_prepare_progress_forces_lines_for_the_duplicate_pass_too(photos: Path, tmp_path: Path) -> None:
    # --dedup same-split: the pass before the pack (the default report fingerprints in the pack workers)
    proc = run_imgprep("prepare", "folders", photos, "-o", tmp_path / "out", "--split", "train=0.5,val=0.5",
                       "-j", "1", "--progress", "--dedup", "same-split")
    found = _lines(proc.stderr)
    assert {"duplicates", "pack train", "pack val"} <= set(found), proc.stderr
    assert found["duplicates"][0].endswith("0/12 img") and found["duplicates"][-1].endswith("12/12 img")
    quiet = run_imgprep("prepare", "folders", photos, "-o", tmp_path / "q", "--split", "train=0.5,val=0.5",
                        "-j", "1", "--progress", "-q")
    assert not _lines(quiet.stderr), quiet.stderr


def test_the_api_prepare_progress_covers_the_duplicate_pass(photos: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    imgprep.prepare("folders", str(photos), str(tmp_path / "out"), split="train=0.5,val=0.5", num_workers=1,
                    progress=True, dedup="same-split")  # the pass before the pack (report has none)
    assert {"duplicates", "pack train", "pack val"} <= set(_lines(capsys.readouterr().err))
    imgprep.prepare("folders", str(photos), str(tmp_path / "off"), split="train=0.5,val=0.5", num_workers=1,
                    echo=print)  # the API's default: no progress, even where it prints
    assert not _lines(capsys.readouterr().err)


@pytest.mark.parametrize("argv", [
    ["-c", "from imgprep.cli.main import main; main()"],
    ["-c", "from imgprep.cli.main import main; main()", "processing"],
    ["-m", "imgprep.processing"],
])
def test_a_group_without_its_command_is_one_usage_line(argv: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("imgprep: error: missing command: choose from "), line
    assert "prepare" in line and "Options:" not in line and len(line) < 300, line


def test_verify_of_the_validation_channel_does_not_hint_its_own_count(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    imgprep.prepare("folders", str(photos), str(out), split="train=0.75,val=0.25", num_workers=1, dedup="off")
    hyper = json.loads((out / "hyperparameters.json").read_text())
    hyper["num_training_samples"] = "abc"
    (out / "hyperparameters.json").write_text(json.dumps(hyper))
    problems = [str(p) for p in imgprep.verify(str(out / "val.rec")).problems]
    [line] = [p for p in problems if "num_training_samples" in p]
    assert "set it to 3" not in line and line.endswith("set it to the training split's record count"), line
    train = [str(p) for p in imgprep.verify(str(out / "train.rec")).problems]
    assert any(p.endswith("is not a count of images: set it to 9") for p in train), train


def test_pack_refuses_a_multi_hot_value_the_reader_would_refuse(photos: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "classes.json").write_text(json.dumps({"names": {"0": "ant", "1": "bee", "2": "cow"}}))
    rows = [(0, (1, 0, 1), "ant/img_000.jpg"), (1, (0, 7, 0), "bee/img_000.jpg"), (2, (0, 0, 1), "cow/img_000.jpg")]
    (lists / "train.lst").write_text("".join(f"{i}\t" + "\t".join(map(str, hot)) + f"\t{path}\n"
                                             for i, hot, path in rows))
    proc = run_imgprep("pack", lists / "train.lst", "--root", photos, "-o", tmp_path / "out" / "train",
                       "--pack-label", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"imgprep: error: {lists / 'train.lst'}: entry 1 (bee/img_000.jpg) has 7 at "
                                        "position 1 of its multi-hot label vector (only 0 and 1 are allowed)"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_processing_resume_of_a_complete_output_says_so(photos: Path, tmp_path: Path) -> None:
    def job() -> str:
        proc = subprocess.run([sys.executable, "-m", "imgprep.processing", "prepare", "folders", str(photos), "-o",
                               str(tmp_path / "out"), "--opt-ml", str(tmp_path / "optml"), "--split",
                               "train=0.5,val=0.5", "--dedup", "off", "-j", "1", "--resume"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    assert "already complete" not in job()
    again = job()
    assert "packed train: already complete, nothing to resume: 6 records, 0 skipped" in again, again


@pytest.mark.parametrize(("values", "said"), [
    ({"shard_size": 1}, "--shard-size: '1' is 1 byte(s): give a unit"),
    ({"checkpoint_every": -1}, "--checkpoint-every: -1 is not a size"),
])
def test_a_processing_config_number_is_checked_as_the_command_line_checks_it(photos: Path, tmp_path: Path,
                                                                             values: dict[str, int], said: str) -> None:
    config = tmp_path / "job.json"
    config.write_text(json.dumps(values))
    proc = subprocess.run([sys.executable, "-m", "imgprep.processing", "prepare", "folders", str(photos), "-o",
                           str(tmp_path / "out"), "--opt-ml", str(tmp_path / "optml"), "--config", str(config),
                           "--dedup", "off"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"imgprep: error: {said}"), line
    assert not (tmp_path / "out").exists()


def test_prepare_into_an_output_a_file_stands_in_fails_before_any_image_is_read(
        photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from imgprep.errors import StorageError

    opened: list[str] = []
    real = os.open

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith(".jpg"):
            opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    (tmp_path / "taken").write_text("a file, not a folder")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        with pytest.raises(StorageError, match=r"cannot create the output folder \(a file is in the way\)"):
            imgprep.prepare("folders", str(photos), str(out), split="train=0.5,val=0.5", num_workers=1)
    assert opened == []  # the duplicate pass read nothing


def test_verify_refuses_a_num_classes_the_dataset_record_contradicts(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    imgprep.prepare("folders", str(photos), str(out), split="train=0.5,val=0.5", num_workers=1, dedup="off")
    proc = run_imgprep("verify", out / "train", "--num-classes", "5", check=False)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.splitlines() == ["imgprep: error: --num-classes 5: the dataset record says 3 classes "
                                        "(leave --num-classes out)"]
    assert imgprep.verify(str(out / "train"), num_classes=3).ok


def test_the_prepared_folders_metadata_names_are_spelled_only_in_layout() -> None:
    import ast

    package = Path(imgprep.__file__).parent
    spelled = [f"{path.relative_to(package)}:{node.lineno}" for path in sorted(package.rglob("*.py"))
               if path.relative_to(package).parts[0] != "layout"
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and node.value in ("classes.json", "hyperparameters.json")]
    assert spelled == []  # layout.prepared names them (issue 27.3)


@pytest.mark.parametrize(("key", "expected"), [("multi_label", "multi_label None must be 0 or 1"),
                                               ("image_shape", "image_shape null is not 'C,H,W'")])
def test_verify_refuses_a_null_hyperparameter(photos: Path, tmp_path: Path, key: str, expected: str) -> None:
    out = tmp_path / "out"
    imgprep.prepare("folders", str(photos), str(out), split="train=0.5,val=0.5", num_workers=1, dedup="off",
                    resize=24)
    hyper = json.loads((out / "hyperparameters.json").read_text())
    hyper[key] = None  # what a JSON writer makes of a missing value: the algorithm cannot parse it
    (out / "hyperparameters.json").write_text(json.dumps(hyper))
    problems = [str(p) for p in imgprep.verify(str(out / "train")).problems]
    assert [p for p in problems if p.endswith(expected)], problems


def test_the_api_pack_states_the_class_names_it_is_given(photos: Path, tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    imgprep.convert("folders", str(photos), str(lists), split="train=0.5,val=0.5", dedup="off")
    imgprep.pack(str(lists / "train.lst"), str(photos), str(tmp_path / "out" / "train"), num_workers=1,
                 class_names=("Ant", "Bee", "Cow"))  # not the classes.json beside the list
    record = json.loads((tmp_path / "out" / "train.dataset.json").read_text())
    assert (record["num_classes"], record["class_names"]) == (3, ["Ant", "Bee", "Cow"])
    with pytest.raises(imgprep.errors.UsageError, match=r"has label 2, not a class id in 0\.\.1 \(2 classes, from "
                                                        r"class_names\)"):
        imgprep.pack(str(lists / "train.lst"), str(photos), str(tmp_path / "two" / "train"), num_workers=1,
                     class_names=("Ant", "Bee"))


@pytest.mark.parametrize("keywords", [{"train": "no"}, {"progress": "yes"}])
def test_the_api_verify_refuses_a_string_for_a_flag(photos: Path, tmp_path: Path, keywords: dict[str, str]) -> None:
    out = tmp_path / "out"
    imgprep.prepare("folders", str(photos), str(out), split="train=0.5,val=0.5", num_workers=1, dedup="off")
    with pytest.raises(imgprep.errors.UsageError, match="must be True or False"):
        imgprep.verify(str(out / "train"), **keywords)  # "no" read as true: checked as the training channel


def test_the_reader_refuses_a_string_for_its_checksum_switch(photos: Path, tmp_path: Path) -> None:
    from imgprep.data import Dataset

    out = tmp_path / "out"
    imgprep.prepare("folders", str(photos), str(out), split="train=0.5,val=0.5", num_workers=1, dedup="off")
    with pytest.raises(imgprep.errors.UsageError, match="checksums must be True or False"):
        Dataset(str(out / "train"), checksums="no")  # meant off, read as on
    assert Dataset(str(out / "train"), checksums=False).crcs is None


def test_launch_without_a_region_is_one_usage_line_not_a_bug_report(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_ACCESS_KEY_ID="x",
               AWS_SECRET_ACCESS_KEY="y")
    proc = subprocess.run([sys.executable, "-c", "from imgprep.cli.main import main; main()", "launch", "--image",
                           "IMG", "--role", "arn:aws:iam::000000000000:role/r", "--", "prepare", "folders",
                           "s3://bucket/in/", "-o", "s3://bucket/out/"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["imgprep: error: no AWS region for SageMaker: give --region (or set "
                                        "AWS_DEFAULT_REGION)"]


def test_prepare_of_the_image_format_shows_its_packs_progress(photos: Path, tmp_path: Path) -> None:
    proc = run_imgprep("prepare", "folders", photos, "-o", tmp_path / "out", "--split", "train=0.5,val=0.5",
                       "--format", "images", "--dedup", "off", "-j", "1", "--progress")
    found = _lines(proc.stderr)
    assert [label for label in found if label.startswith("pack ")] == ["pack train", "pack validation"], proc.stderr
    assert all(lines[0].endswith("0/6 img") and lines[-1].endswith("6/6 img")
               for label, lines in found.items() if label.startswith("pack "))
