"""``.lst`` reading and writing: im2rec's and SageMaker's layouts, and every validation error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgprep.api import write_lst
from imgprep.errors import FormatError
from imgprep.formats.lst import LstItem, dumps, format_label, parse_lines, read_lst


def test_reads_im2rec_float_labels(tmp_path) -> None:
    path = tmp_path / "im2rec.lst"
    path.write_text("0\t3.000000\tcat/1.jpg\n1\t0.000000\tdog/a b.jpg\n")
    assert read_lst(path) == [LstItem(0, (3.0,), "cat/1.jpg"), LstItem(1, (0.0,), "dog/a b.jpg")]


def test_multi_label_round_trip_writes_integers(tmp_path) -> None:
    items = [LstItem(5, (1.0, 0.0, 1.0), "x/1.jpg"), LstItem(2, (0.0, 0.5, 1.0), "y.png")]
    path = tmp_path / "multi.lst"
    write_lst(path, items)
    assert path.read_text() == "5\t1\t0\t1\tx/1.jpg\n2\t0\t0.5\t1\ty.png\n"
    assert read_lst(path) == items


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0\tcat.jpg\n", r"bad\.lst:1: expected 'index<TAB>label...<TAB>path', got 2"),
        ("0\t1\ta.jpg\n1\t1\t0\tb.jpg\n", r"bad\.lst:2: 4 columns where earlier lines have 3"),
        ("0\tcat\ta.jpg\n", r"bad\.lst:1: label 'cat' is not a number"),
        ("0\tnan\ta.jpg\n", r"bad\.lst:1: label 'nan' is not a finite number"),
        ("0\t1\ta.jpg\n\n0\t2\tb.jpg\n", r"bad\.lst:3: duplicate index 0 \(first on line 1\)"),
        ("0\t1\t/etc/passwd\n", r"bad\.lst:1: absolute image path"),
        ("0\t1\ta/../../secret.jpg\n", r"bad\.lst:1: image path .* escapes the image root"),
        ("x\t1\ta.jpg\n", r"bad\.lst:1: index 'x' is not an integer"),
        ("-1\t1\ta.jpg\n", r"bad\.lst:1: index -1 is negative"),
        ("0\t1\t\n", r"bad\.lst:1: empty image path"),
    ],
    ids=[
        "two-columns",
        "column-count",
        "non-numeric",
        "nan",
        "duplicate",
        "absolute",
        "escape",
        "index",
        "negative",
        "empty-path",
    ],
)
def test_validation_names_file_and_line(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.lst"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        read_lst(path)


def test_dot_dot_inside_the_root_is_fine(tmp_path) -> None:
    path = tmp_path / "ok.lst"
    path.write_text("0\t1\ta/../b.jpg\n")
    assert read_lst(path)[0].path == "a/../b.jpg"


def test_missing_and_binary_files(tmp_path) -> None:
    with pytest.raises(FormatError, match="no such list file"):
        read_lst(tmp_path / "missing.lst")
    (tmp_path / "bin.lst").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FormatError, match="not UTF-8"):
        read_lst(tmp_path / "bin.lst")


def test_format_label() -> None:
    assert [format_label(x) for x in (3.0, 0, 0.25, 1e-7, -2.0)] == ["3", "0", "0.25", "1e-07", "-2"]


labels = st.floats(allow_nan=False, allow_infinity=False, width=32)
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="/\\:"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
items = st.lists(st.tuples(labels, names), max_size=20)


@settings(max_examples=200, deadline=None)
@given(items, st.integers(1, 4))
def test_write_then_read_round_trips(rows, width) -> None:
    original = [LstItem(i, (lab,) * width, f"d/{name}") for i, (lab, name) in enumerate(rows)]
    assert list(parse_lines(dumps(original).splitlines(keepends=True))) == original


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_crashes_on_junk(text: str) -> None:
    try:
        list(parse_lines(text.splitlines(keepends=True), path="fuzz.lst"))
    except FormatError as exc:
        assert str(exc).startswith("fuzz.lst:")
