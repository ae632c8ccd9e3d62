"""The Python API reads like the CLI: the same options as keywords, the same bytes, typed results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest
from click.testing import CliRunner

import imgprep
from imgprep.cli.main import main
from imgprep.errors import UsageError
from imgprep.exits import failure
from imgprep.formats.lst import read_lst
from imgprep.inspect.analyse import Findings
from imgprep.verify.report import Report


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cli(*args: str) -> int:
    with CliRunner().isolation():
        try:
            main(list(args))
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """Classes two levels down: only --leaf-classes finds all four."""
    root = tmp_path / "nested"
    imgfactory.class_tree(root / "fruit", ["apple", "pear"], 4)
    imgfactory.class_tree(root / "veg", ["kale", "leek"], 4)
    return root


def test_convert_takes_the_cli_options_as_keywords(nested: Path, tmp_path: Path) -> None:
    result = imgprep.convert("folders", nested, tmp_path / "api", split="train=0.5,val=0.5", leaf_classes=True,
                             seed=3)
    assert result.dataset.num_classes == 4
    assert cli("convert", "folders", str(nested), "-o", str(tmp_path / "cli"), "--split", "train=0.5,val=0.5",
               "--leaf-classes", "--seed", "3", "-q") == 0
    assert files(tmp_path / "api") == files(tmp_path / "cli")


def test_convert_refuses_unknown_keywords_and_options_for_another_source(nested: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="leaf_class"):
        imgprep.convert("folders", nested, tmp_path / "o", leaf_class=True)
    with pytest.raises(UsageError, match="--categories cannot be used with folders data"):
        imgprep.convert("folders", nested, tmp_path / "o", categories=["a"])
    with pytest.raises(TypeError, match="not both"):
        imgprep.convert("folders", nested, tmp_path / "o", imgprep.ConvertOptions(), seed=1)


def test_prepare_keywords_give_the_cli_bytes(nested: Path, tmp_path: Path) -> None:
    done = imgprep.prepare("folders", nested, tmp_path / "api", leaf_classes=True, split="train=0.5,val=0.5",
                           resize=16, num_workers=1, seed=2)
    assert set(done.packed) == {"train", "val"} and done.packed["train"].records == 8
    assert cli("prepare", "folders", str(nested), "-o", str(tmp_path / "cli"), "--leaf-classes", "--split",
               "train=0.5,val=0.5", "--resize", "16", "-j", "1", "--seed", "2", "-q") == 0
    assert files(tmp_path / "api") == files(tmp_path / "cli")
    with pytest.raises(TypeError, match="rezise"):
        imgprep.prepare("folders", nested, tmp_path / "o", rezise=16)


def test_an_older_caller_may_still_give_the_store_inside_pack_options(nested: Path, tmp_path: Path) -> None:
    options = imgprep.PackOptions(num_workers=1, quiet=True, progress=False, storage=imgprep.Storage())
    done = imgprep.prepare("folders", nested, tmp_path / "api", leaf_classes=True, split="train=0.5,val=0.5",
                           resize=16, seed=2, options=options)
    assert set(done.packed) == {"train", "val"} and done.packed["train"].records == 8
    packed = imgprep.pack(tmp_path / "api" / "train.lst", nested, tmp_path / "again" / "train", resize=16,
                          options=options)
    assert packed.records == 8


def test_verify_and_inspect_return_their_reports(nested: Path, tmp_path: Path) -> None:
    imgprep.prepare("folders", nested, tmp_path / "out", leaf_classes=True, resize=16, num_workers=1)
    report = imgprep.verify(tmp_path / "out" / "train", against=tmp_path / "out" / "train.lst")
    assert isinstance(report, Report) and report.ok and report.records == len(read_lst(tmp_path / "out" / "train.lst"))
    wrong = imgprep.verify(tmp_path / "out" / "train", against=read_lst(tmp_path / "out" / "val.lst"))
    assert not wrong.ok  # problems are in the report, not raised
    findings = imgprep.inspect(tmp_path / "out", html=tmp_path / "page.html")
    assert isinstance(findings, Findings) and [s["name"] for s in findings.to_json()["splits"]] == ["train", "val"]
    assert (tmp_path / "page.html").stat().st_size > 0


def test_the_api_names_are_callable_whichever_module_loaded_first() -> None:
    code = ("import imgprep.verify.run, imgprep.inspect.scan, imgprep.convert, imgprep\n"
            "print(callable(imgprep.verify), callable(imgprep.inspect), callable(imgprep.convert),\n"
            "      imgprep.verify.run.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True", "imgprep.verify.run"]


@pytest.mark.parametrize(
    ("exc", "status", "reason"),
    [
        (UsageError("bad option"), 2, "bad option"),
        (KeyboardInterrupt("SIGTERM"), 130, "interrupted (SIGTERM)"),
        (OSError(28, "No space left on device", "/x/out.rec"), 1, "/x/out.rec: No space left on device"),
        (BrokenPipeError(), 1, ""),
    ],
    ids=["usage", "interrupt", "os-error", "broken-pipe"],
)
def test_one_table_turns_errors_into_exit_statuses(exc: BaseException, status: int, reason: str) -> None:
    result = failure(exc)
    assert (result.status, result.reason, result.bug) == (status, reason, False)
    assert failure(KeyError("k")).bug and failure(KeyError("k")).status == 1
