"""Papercuts a newcomer hit in the CLI: sizes without units, one error style, hints where a default
surprises, per-kind help, what --channel-settings prints, a resume of a finished output."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import imgfactory
import pytest
from test_convert_cli import run

from imgprep.splits.dedup import Summary


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    imgfactory.class_tree(tmp_path / "photos", ["a", "b"], 3)
    assert run("convert", "folders", str(tmp_path / "photos"), "-o", str(tmp_path / "lists"), "-q",
               "--split", "train=0.5,val=0.5")[0] == 0
    return tmp_path


def _pack(photos: Path, *extra: str) -> tuple[int, str, str]:
    return run("pack", str(photos / "lists" / "train.lst"), "--root", str(photos / "photos"), "-o",
               str(photos / "out" / "train"), *extra)


def test_a_shard_size_without_a_unit_below_a_mebibyte_is_refused(photos: Path) -> None:
    code, _, err = _pack(photos, "--shard-size", "1")
    assert code == 2 and "--shard-size" in err and "give a unit" in err
    assert not (photos / "out").exists()
    assert _pack(photos, "--shard-size", "1GiB", "-q")[0] == 0


@pytest.mark.parametrize("args", [
    ["pack", "x.lst", "--root", "r", "-o", "o", "--quality", "0"],
    ["pack", "x.lst", "--root", "r", "-o", "o", "--bogus"],
    ["pack", "x.lst", "--root", "r"],
    ["prepare"],
    ["verify", "x.rec", "--num-classes", "zero"],
    ["nosuchcommand"],
])
def test_usage_errors_are_one_imgprep_line_with_a_short_usage_hint(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("imgprep: error: "), err
    assert "Usage:" not in err and "Try '" not in err and "Error:" not in err
    assert "(usage: imgprep" in err and "--help)" in err


def test_verify_help_shows_percent_signs_once() -> None:
    code, out, _ = run("verify", "--help")
    assert code == 0 and "P%" in out and "%%" not in out


def test_encoding_lists_jpg_and_png_and_still_takes_the_dotted_names(photos: Path) -> None:
    _, out, _ = run("pack", "--help")
    assert "[jpg|png]" in out and ".jpg" not in out
    assert _pack(photos, "--encoding", ".png", "-q")[0] == 0


def test_resume_of_a_complete_output_says_it_is_complete(photos: Path) -> None:
    assert _pack(photos)[0] == 0
    code, _, err = _pack(photos, "--resume")
    assert code == 0 and "already complete" in err and "images/s" not in err and "none worker" not in err


def test_inspect_of_a_list_without_root_says_where_the_images_were_looked_for(photos: Path) -> None:
    code, _, err = run("inspect", str(photos / "lists" / "train.lst"))
    assert code == 1 and err.count("\n") == 1
    assert "without --root" in err and str(photos / "lists") in err
    assert run("inspect", str(photos / "lists" / "train.lst"), "--root", str(photos / "photos"))[0] == 0


def test_prepare_does_not_say_the_records_differ_when_nothing_was_skipped(photos: Path) -> None:
    code, out, err = run("prepare", "folders", str(photos / "photos"), "-o", str(photos / "prep"), "--pass-through")
    assert code == 0, err
    assert "differ from the lists" not in out + err and "image_shape" in out + err


def test_leak_counts_name_the_option_that_closes_them() -> None:
    lines = Summary(images=4, groups=1, grouped_images=2, leaks=1, leaked_images=1).lines(["train", "val"])
    assert any("--dedup same-split" in line for line in lines)
    assert not any("same-split" in line for line in Summary(images=4).lines(["train", "val"]))


def test_prepare_help_for_one_kind_shows_its_options_first() -> None:
    code, out, _ = run("prepare", "coco", "--help")
    assert code == 0
    mine, _, rest = out.partition("Options:")
    rest = rest.partition("Examples:")[0]
    assert "Options for coco data" in mine and "--categories" in mine and "--min-area" in mine
    assert "--leaf-classes" not in mine and "--resize" in rest and "--categories" not in rest
    assert "--leaf-classes" in rest.splitlines()[-1] or "Other kinds' options" in rest
    _, every, _ = run("prepare", "--help")
    for kind in ("folders", "caltech", "coco", "mnist", "manifest"):
        assert f"Options for {kind} data" in every


class _NotFound(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_s3() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_answering_404_to_everything_is_named(photos: Path, not_s3: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code, _, err = run("pack", str(photos / "lists" / "train.lst"), "--root", str(photos / "photos"),
                       "-o", "s3://bucket/out/train", "--endpoint-url", not_s3)
    assert code == 1 and "the bucket bucket does not exist" in err and not_s3 in err
