"""What verify and inspect say about odd records and names: a payload that is not an image gets
its reason, not a BytesIO repr; a name that is not UTF-8 is shown, not a UnicodeEncodeError."""

from __future__ import annotations

import os
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


def test_inspect_html_of_a_shard_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """A file name with undecodable bytes reaches the page as U+FFFD, not as a UnicodeEncodeError."""
    import imgfactory

    name = os.fsdecode(b"tr\xffain.rec")
    with recordio.RecordWriter(tmp_path / name) as writer:
        for i in range(2):
            writer.write(struct.pack("<IfQQ", 0, float(i), i, 0) + imgfactory.jpeg(40, 30, seed=i))
    code, text = run_cli(["inspect", tmp_path, "--html", tmp_path / "r.html"])
    assert code == 0, text
    assert "tr\ufffdain" in (tmp_path / "r.html").read_text(encoding="utf-8")
