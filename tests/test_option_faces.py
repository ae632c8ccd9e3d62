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
        unknown = isinstance(error, TypeError) and "unexpected keyword" in str(error) or "unknown option" in str(error)
        assert not unknown, f"{name}({keyword}=...) refused: {error}"
    for keyword in ("bogus", "checkpoint_every", "class_list", "outdir", "as_json"):
        if keyword not in accepted:
            assert isinstance(_call(name, tmp_path, **{keyword: 1}), TypeError), keyword
