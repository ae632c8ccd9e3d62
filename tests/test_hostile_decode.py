"""What verify and inspect say about a record payload that is not an image: the reason, not a
Python object's repr (Pillow's own message names the ``BytesIO`` it was given)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_hostile_inputs import run_cli

from imgprep.formats import recordio


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_payload_that_is_no_image_is_named_plainly(command: str, tmp_path: Path) -> None:
    with recordio.RecordWriter(tmp_path / "x.rec") as writer:
        writer.write(struct.pack("<IfQQ", 0, 0.0, 1, 0) + b"GIF89a but not really")
    code, text = run_cli([command, tmp_path / "x.rec"])
    assert "cannot decode image (not an image Pillow can read)" in text, text
    assert "object at 0x" not in text and "Traceback" not in text, text
    assert code == (1 if command == "verify" else 0)
