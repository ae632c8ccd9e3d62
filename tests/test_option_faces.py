"""Each face accepts exactly what it accepted before the options became one table.

``tests/reference/option_faces.json`` and ``api_keywords.json`` were recorded from the hand-written
options (``python tests/optionfaces.py``); a refactor that drops, renames or retypes an option, or
changes what the API takes as a keyword, fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optionfaces
import pytest

import imgprep

API_REFERENCE = Path(__file__).parent / "reference" / "api_keywords.json"
# Positional or structural arguments, given in the calls below.
_POSITIONAL = {"kind", "input", "output", "lists", "root", "path"}


def test_every_command_takes_the_options_it_took() -> None:
    reference = json.loads(optionfaces.REFERENCE.read_text())
    assert optionfaces.faces() == reference


def _call(name: str, tmp_path: Path, **keywords: Any) -> BaseException | None:
    missing = str(tmp_path / "missing")
    calls = {
        "convert": lambda: imgprep.convert("folders", missing, tmp_path / "o", **keywords),
        "prepare": lambda: imgprep.prepare("folders", missing, tmp_path / "o", **keywords),
        "pack": lambda: imgprep.pack([], missing, tmp_path / "o", **keywords),
        "verify": lambda: imgprep.verify(missing, **keywords),
        "inspect": lambda: imgprep.inspect(missing, **keywords),
    }
    try:
        calls[name]()
    except BaseException as exc:  # noqa: BLE001 - any failure but an unknown keyword is fine here
        return exc
    return None


@pytest.mark.parametrize("name", ["convert", "prepare", "pack", "verify", "inspect"])
def test_the_api_takes_the_keywords_it_took(name: str, tmp_path: Path) -> None:
    accepted = set(json.loads(API_REFERENCE.read_text())[name]) - _POSITIONAL
    for keyword in sorted(accepted):
        error = _call(name, tmp_path, **{keyword: None})
        unknown = isinstance(error, TypeError) and ("unexpected keyword" in str(error) or "unknown" in str(error))
        assert not unknown, f"{name}({keyword}=...) refused: {error}"
    for keyword in ("bogus", "checkpoint_every", "class_list", "outdir", "as_json"):
        if keyword not in accepted:
            assert isinstance(_call(name, tmp_path, **{keyword: 1}), TypeError), keyword


def _tree(tmp_path: Path) -> Path:
    import imgfactory

    root = tmp_path / "photos"
    imgfactory.class_tree(root, ["a", "b"], 3)
    return root


@pytest.mark.parametrize(
    ("keywords", "cli_args", "message"),
    [
        ({"checkpoint_bytes": -1}, ["--checkpoint-every", "-1"], "checkpoint_bytes must not be negative"),
        ({"dedup_threshold": 12}, ["--dedup-threshold", "12"], "dedup_threshold must be at most 11"),
        ({"min_area": -1.0}, ["--min-area", "-1"], "min_area must not be negative"),
        ({"max_pixels": 0}, ["--max-pixels", "0"], "max_pixels must be at least 1"),
        ({"class_depth": 0}, ["--class-depth", "0"], "class_depth must be at least 1"),
    ],
)
def test_the_api_refuses_what_the_cli_refuses(tmp_path: Path, keywords: dict[str, Any], cli_args: list[str],
                                              message: str) -> None:
    from click.testing import CliRunner

    from imgprep.cli.main import cli
    from imgprep.errors import UsageError

    photos = _tree(tmp_path)
    result = CliRunner().invoke(cli, ["prepare", "folders", str(photos), "-o", str(tmp_path / "cli"), *cli_args])
    assert result.exit_code == 2, result.output
    with pytest.raises(UsageError, match=message):
        imgprep.prepare("folders", photos, tmp_path / "api", **keywords)
    assert not (tmp_path / "api").exists()


def test_objects_from_python_are_held_to_the_same_table(tmp_path: Path) -> None:
    from imgprep.errors import UsageError

    photos = _tree(tmp_path)
    imgprep.convert("folders", photos, tmp_path / "lists", split="train=0.5,val=0.5")
    with pytest.raises(UsageError, match="checkpoint_bytes must not be negative"):
        imgprep.pack(str(tmp_path / "lists" / "train.lst"), photos, tmp_path / "out",
                     options=imgprep.PackOptions(checkpoint_bytes=-1))
    with pytest.raises(UsageError, match="max_concurrency must be at least 1"):
        imgprep.pack(str(tmp_path / "lists" / "train.lst"), photos, tmp_path / "out",
                     storage_options={"max_concurrency": 0})
    with pytest.raises(UsageError, match="num_classes must be at least 1"):
        imgprep.verify(tmp_path / "out", num_classes=0)
    assert not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("args", [
    ["pack", "x.lst", "-o", "out"], ["pack", "x.lst", "--root", "r"], ["prepare", "folders", "x"],
    ["convert", "folders", "x"], ["merge", "p"], ["processing", "pack", "x.lst", "-o", "out"],
    ["processing", "prepare", "mnist", "x"], ["pack", "--root", "r", "-o", "out"],
])
def test_a_missing_required_option_is_a_usage_error(args: list[str]) -> None:
    from click.testing import CliRunner

    from imgprep.cli.main import cli

    assert CliRunner().invoke(cli, args).exit_code == 2


def test_a_config_file_takes_every_option_by_its_name_and_by_its_flag() -> None:
    from imgprep.processing.command import config_keys, processing_pack, processing_prepare

    keys = config_keys(processing_prepare)
    # the spellings the hand-written aliases took, now made from the table
    assert {keys["output"], keys["classes"], keys["crowd"]} == {"outdir", "class_list", "include_crowd"}
    reference = json.loads(optionfaces.REFERENCE.read_text())
    for command, path in ((processing_prepare, "processing prepare"), (processing_pack, "processing pack")):
        keys = config_keys(command)
        assert set(reference[path]) - {"config_file"} <= set(keys)
        assert all(keys[name] == name for name in set(reference[path]) - {"config_file"})
        assert "config_file" not in keys and "config" not in keys
