"""The one .idx parser: its three modes (strict, fast, report) agree on every index, and the
vectorised path reads what the line-by-line path reads."""

from __future__ import annotations

import pytest

from imgprep.data.index import parse_offsets
from imgprep.errors import FormatError
from imgprep.formats import recordio as rio
from imgprep.formats import rioindex
from imgprep.verify.index import read_index as verify_read_index

GOOD = ["0\t0\n1\t8\n", "5\t16\r\n3\t0\r\n9\t8", "\n7\t4\n\n2\t0\n\n", "",
        "".join(f"{k}\t{4 * k}\n" for k in range(3000)), f"{2**64 - 1}\t0\n"]
BAD = [("0\t0\n0\t8\n", 2, "duplicate key 0 (first on line 1)"),
       ("0\t0\n1 8\n", 2, "expected 'key<TAB>offset', got '1 8'"),
       ("0\t0\n1\t6\n", 2, "offset 6 is not a 4-byte-aligned position"),
       ("0\t0\n1\t-8\n", 2, "expected 'key<TAB>offset', got '1\\t-8'"),
       ("0\t0\n\nx\t4\n", 3, "expected 'key<TAB>offset', got 'x\\t4'"),
       (f"0\t0\n{2**64}\t4\n", 2, f"key {2**64} does not fit in 64 bits"),
       ("1\t" + "9" * 19 + "\n", 1, "offset 9999999999999999999 has more than 18 digits (past the end of any file)")]


@pytest.mark.parametrize("text", GOOD)
def test_the_modes_read_the_same_entries(text: str) -> None:
    strict = rio.parse_index(text, "x.idx")
    report = verify_read_index([text.encode()], "x.idx")
    assert not report.problems and report.entries() == strict
    assert parse_offsets(text.encode(), "x.idx").tolist() == sorted(o for _, o in strict)


@pytest.mark.parametrize(("text", "line", "why"), BAD)
def test_strict_refuses_at_the_line_report_names(text: str, line: int, why: str) -> None:
    with pytest.raises(FormatError) as caught:
        rio.parse_index(text, "x.idx")
    assert (caught.value.line, caught.value.message) == (line, why)
    with pytest.raises(FormatError, match=f"x.idx:{line}: "):
        parse_offsets(text.encode(), "x.idx")


def test_report_mode_goes_on_after_every_problem() -> None:
    text = "0\t0\nnot an index line\n1\t8\n0\t12\n-1\t16\n2\t" + str(2**70) + "\n"
    index = verify_read_index([text.encode()[:7], text.encode()[7:]], "x.idx")  # cut inside a line
    assert index.problems == [(2, "expected 'key<TAB>offset', got 'not an index line'"),
                              (4, "duplicate key 0 (first on line 1)")]
    assert [index.key(e) for e in range(len(index))] == [0, 1, -1, 2]
    assert [index.offset(e) for e in range(len(index))] == [0, 8, 16, 2**70]
    assert [index.line(e) for e in range(len(index))] == [1, 3, 5, 6] and not index.strict


def test_the_vectorised_and_line_paths_agree_across_chunks() -> None:
    plain = "".join(f"{k * 7}\t{4 * k}\n" for k in range(200_000))  # several chunks, all vectorised
    crlf = plain.replace("\n", "\r\n")  # every chunk line by line
    a, b = rioindex.parse(plain, "a.idx"), rioindex.parse(crlf, "b.idx")
    assert a.keys == b.keys and a.offsets == b.offsets and a.lines is None and b.lines is None
    with pytest.raises(FormatError, match=r"b\.idx:150001: duplicate key 0"):
        rioindex.parse(crlf.replace("1050000\t", "0\t", 1), "b.idx")
    with pytest.raises(FormatError, match="two keys point at the same offset 8"):
        rioindex.sorted_offsets(b"0\t0\n1\t8\n2\t8\n", "c.idx")
