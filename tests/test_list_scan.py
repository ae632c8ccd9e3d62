"""The native .lst scanner (native/lstscan.c) behind ListStream: same items, errors, messages,
line numbers and SHA-256 as the pure-Python reading, on random valid and invalid lists."""

from __future__ import annotations

import hashlib
import random
import struct
from array import array
from pathlib import Path

import numpy as np
import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

import imgprep
from imgprep.errors import FormatError
from imgprep.formats.lst import MAX_LINE, LstItem
from imgprep.splits import stream as stream_module
from imgprep.splits.stream import IndexSet, ListStream

lst_scan = stream_module._lst_scan


def test_the_scanner_is_built() -> None:
    # The suite runs with the native core (IMGPREP_REQUIRE_NATIVE in CI): the comparisons below
    # would otherwise compare the pure reading with itself.
    assert lst_scan is not None


# --------------------------------------------------------------------------- the scanner itself


def test_scan_takes_plain_lines_and_stops_before_any_other() -> None:
    data = b"1\t2.5\ta.jpg\n2\t-0\tb/c d.jpg\r\n3\t1.\t\xc3\xa9t\xc3\xa9.jpg\n4\t+5\tx.jpg\n5\t1\tz\n"
    end, count, columns, ids, items = lst_scan(data, 0, 0, 100, None)
    assert (end, count, columns, items) == (data.index(b"4\t"), 3, 3, None)
    assert np.frombuffer(ids, np.uint64).tolist() == [1, 2, 3]
    end, count, columns, ids, items = lst_scan(data, 0, 0, 100, LstItem)
    assert ids is None and count == 3
    assert [repr(i) for i in items] == [repr(LstItem(1, (2.5,), "a.jpg")), repr(LstItem(2, (-0.0,), "b/c d.jpg")),
                                        repr(LstItem(3, (1.0,), "été.jpg"))]
    assert lst_scan(data, end, columns, 100, None)[:3] == (end, 0, 3)  # "+5" is Python's
    tail = data.index(b"\n5\t") + 1
    assert lst_scan(data, tail, 3, 100, None)[:2] == (len(data), 1)
    assert lst_scan(data, tail, 4, 100, None)[:2] == (tail, 0)  # not the file's column count
    assert lst_scan(data, 0, 0, 2, None)[:2] == (data.index(b"3\t"), 2)  # limit
    assert lst_scan(b"1\t2\ta.jpg", 0, 0, 9, None)[:2] == (0, 0)  # no newline: Python's last line


def test_items_built_in_c_are_ordinary_lst_items() -> None:
    import dataclasses
    import pickle

    item = lst_scan(b"7\t1\t0.5\tp/q.jpg\n", 0, 0, 1, LstItem)[4][0]
    same = LstItem(7, (1.0, 0.5), "p/q.jpg")
    assert item == same and hash(item) == hash(same) and repr(item) == repr(same) and item.label == 1.0
    assert vars(item) == vars(same) and list(vars(item)) == ["index", "labels", "path"]
    assert pickle.loads(pickle.dumps(item)) == same
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.index = 3  # type: ignore[misc]


@pytest.mark.parametrize("args", [(b"", -1, 0, 1, None), (b"x", 2, 0, 1, None), (b"", 0, 2, 1, None),
                                  (b"", 0, 0, -1, None), (b"", 0, 0, 1, 5)])
def test_scan_refuses_bad_arguments(args: tuple) -> None:
    with pytest.raises((ValueError, TypeError)):
        lst_scan(*args)


def test_labels_are_what_float_makes_of_them() -> None:
    """Correct rounding, bit for bit: the exact fast path (an integer <= 2^53 over 10^k, k <= 22)."""
    rng = random.Random(11)
    texts = ["0", "-0", "0.1", "0.3", "2.675", "9007199254740992", "900719925474099.2", "0." + "9" * 15,
             "-4503599627370497", "0.0000000000000000000001", "3.000000", "00012.50"]
    for _ in range(4000):
        digits = str(rng.randrange(1, 1 << rng.choice((10, 30, 53))))
        cut = rng.randrange(0, min(len(digits), 22) + 1)
        sign = rng.choice(("", "-"))
        texts.append(sign + (digits[: len(digits) - cut] or "0") + ("." + digits[len(digits) - cut:] if cut else ""))
    data = "".join(f"{k}\t{t}\tx\n" for k, t in enumerate(texts)).encode()
    _, count, _, _, items = lst_scan(data, 0, 0, len(texts), LstItem)
    assert count == len(texts)
    assert [struct.pack("<d", i.label) for i in items] == [struct.pack("<d", float(t)) for t in texts]


# --------------------------------------------------------------------------- native vs Python reading


GOOD_PATHS = ["a.jpg", "dir/b c.jpg", "x/y/z.png", "n0/n01440764_10026.JPEG", " lead", "trail ", "~/x", "ab:c"]
ODD_PATHS = ["a:b", "é.jpg", "日本/写真.jpg", "a..b.jpg", "../x.jpg", "a/../b.jpg", "a/../../b", "..", "/abs.jpg",
             "\\win", "a\\b", "C:x.jpg", "é:x", "", " ", "x\x7f", "x\x00y", "\u00a0x", "\u200bx", "a\u2028b",
             "\U0001f600.jpg", "x\r", "a\tb", "x\x0c", b"\xff.jpg", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80",
             b"\xe6\x97", b"a\xe6\x97\xa5", b"\xef\xbb\xbfbom.jpg"]
ODD_INDEXES = ["007", "+5", " 7", "7 ", "1_000", "-1", "-0", "", "٣", "x", "1e3", "0" * 25 + "1",
               "18446744073709551615", "18446744073709551616", "9999999999999999999", "10000000000000000000",
               "9223372036854775808", "\ufeff3"]
ODD_LABELS = ["5.", ".5", "-.5", "+5", "1_000", " 7", "7 ", "nan", "NaN", "inf", "-inf", "1e39", "1e5", "1E5",
              "3.4028234663852886e38", "340282346638528859811704183484516925440", "3.5e38", "9007199254740993",
              "0.1000000000000000055511151231257827", "1234567890123456789", "0." + "3" * 23, "٣", "", "x",
              "0x10", "1.2.3", "--1", "- 1", "-", "\u00a0", "1\u2009"]
ENDINGS = ["\n"] * 40 + ["\r\n"] * 10 + ["\r\r\n", "\n\r", " \n", "\t\n"]
BLANKS = ["", "   ", "\t", "\r", " \t ", "\ufeff", "\x0c", "\u3000", "\x1c", "\x85", "\u2028 "]


def _text(part: str | bytes) -> bytes:
    return part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass")


class ListMaker:
    """Random .lst files: mostly lines the scanner takes, some it leaves (valid or not)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: list[int] = []
        self.next_id = rng.choice((0, 10**6, 2**63 - 5, 2**64 - 40))

    def index(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.01 and self.used:
            value = rng.choice(self.used)  # a duplicate, in this file or an earlier one
        elif roll < 0.025:
            return _text(rng.choice(ODD_INDEXES))
        elif roll < 0.2:
            value = rng.randrange(0, 2**64)
        else:
            value, self.next_id = self.next_id, (self.next_id + rng.choice((1, 1, 1, 3, 5000))) % 2**64
        self.used.append(value)
        return str(value).encode()

    def label(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.015:
            return _text(rng.choice(ODD_LABELS))
        if roll < 0.5:
            return str(rng.randrange(-3, 1000)).encode()
        if roll < 0.75:
            return b"%.6f" % rng.uniform(-1e6, 1e6)
        return repr(rng.uniform(-10, 10)).encode()

    def path(self) -> bytes:
        rng = self.rng
        return _text(rng.choice(ODD_PATHS) if rng.random() < 0.02 else rng.choice(GOOD_PATHS))

    def line(self, labels: int) -> bytes:
        rng = self.rng
        if rng.random() < 0.02:
            return _text(rng.choice(BLANKS)) + _text(rng.choice(ENDINGS))
        if rng.random() < 0.003:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) + b"\n"
        if rng.random() < 0.005:
            labels += rng.choice((-1, 1))
        sep = b" " if rng.random() < 0.003 else b"\t"
        fields = [self.index(), *(self.label() for _ in range(max(labels, 0))), self.path()]
        return sep.join(fields) + _text(rng.choice(ENDINGS))

    def file(self) -> bytes:
        rng = self.rng
        labels = rng.choice((1, 1, 1, 2, 5))
        lines = [self.line(labels) for _ in range(rng.randrange(0, 30))]
        data = b"".join(lines)
        if rng.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
        if rng.random() < 0.15:
            data = data.rstrip(b"\r\n")
        return data


def outcome(paths: list[Path], native: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """What a ListStream makes of ``paths``: its error, or its digest, length and items."""
    monkeypatch.setenv("IMGPREP_NATIVE", "1" if native else "0")
    try:
        stream = ListStream(paths, imgprep.Storage())
    except FormatError as exc:
        return ("error", str(exc))
    assert (stream._scan is not None) == native
    items = [(type(i.index), repr(i)) for i in stream]
    return ("ok", stream.ref, len(stream), items)


class CountingScan:
    """lst_scan, counting the lines it takes (so the test knows both readers were exercised)."""

    def __init__(self) -> None:
        self.taken = 0

    def __call__(self, *args):  # type: ignore[no-untyped-def]
        result = lst_scan(*args)
        self.taken += result[1]
        return result


def test_native_and_python_reading_agree_on_random_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20)
    counting = CountingScan()
    monkeypatch.setattr(stream_module, "_lst_scan", counting)
    kinds: dict[str, int] = {}
    for case in range(1500):
        maker = ListMaker(rng)
        paths = []
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            path = tmp_path / f"c{case}-{k}.lst"
            path.write_bytes(maker.file())
            paths.append(path)
        if rng.random() < 0.03:
            paths.append(paths[0])  # the same list twice: every index repeated
        python = outcome(paths, False, monkeypatch)
        monkeypatch.setattr(stream_module, "_BLOCK", rng.choice((1, 2, 7, 64, 1 << 20)))
        monkeypatch.setattr(stream_module, "_ITEMS_PER_CALL", rng.choice((1, 3, 2048)))
        native = outcome(paths, True, monkeypatch)
        assert native == python, [p.read_bytes() for p in paths]
        kind = python[1].split(": ", 1)[-1].split(" ")[0] if python[0] == "error" else "ok"
        kinds[kind] = kinds.get(kind, 0) + 1
    # Both readers did real work, and the cases covered both outcomes and several kinds of error.
    assert counting.taken > 10_000 and kinds["ok"] > 300 and kinds.get("duplicate", 0) > 50 and len(kinds) > 8, kinds


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_lines_around_max_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bom: bool, ending: bytes) -> None:
    """Lines of MAX_LINE - 1 .. MAX_LINE + 2 bytes, first or later, with or without a newline."""
    head = b"\xef\xbb\xbf" if bom else b""
    for size in range(MAX_LINE - 2, MAX_LINE + 3):
        long = b"1\t2\t" + b"a" * (size - 4 - len(ending)) + ending
        for data in (head + long + b"2\t0\tb\n", head + b"2\t0\tb\n" + long, head + b"2\t0\tb\n" + long + b"3\t1\tc\n"):
            path = tmp_path / "long.lst"
            path.write_bytes(data)
            monkeypatch.setattr(stream_module, "_BLOCK", 1 << 16)
            assert outcome([path], True, monkeypatch) == outcome([path], False, monkeypatch), (size, data[:20])


def test_the_digest_is_the_files_bytes_without_a_leading_bom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset record's list digest (checked by --resume) does not change with the reader."""
    a, b = tmp_path / "a.lst", tmp_path / "b.lst"
    a.write_bytes(b"\xef\xbb\xbf0\t1\ta.jpg\r\n\n1\t0\tb.jpg\n")
    b.write_bytes(b"\xef\xbb\xbf" + b"".join(b"%d\t%d\tp/%d.jpg\n" % (i, i % 7, i) for i in range(2, 90_000)))
    expected = hashlib.sha256(a.read_bytes()[3:] + b.read_bytes()[3:]).hexdigest()
    for native in (False, True):
        monkeypatch.setenv("IMGPREP_NATIVE", "1" if native else "0")
        stream = ListStream([a, b], imgprep.Storage())
        assert stream.ref.sha256 == expected and len(stream) == 90_000


def test_errors_past_the_first_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A duplicate, a bad line and a long line well past the first 1 MiB block: same message."""
    lines = [b"%d\t%d\timages/%07d.jpg\n" % (i, i % 1000, i) for i in range(120_000)]
    cases = {"dup": {90_000: b"17\t1\tx.jpg\n"}, "bad": {100_001: b"5\tcat\tx.jpg\n"},
             "long": {110_000: b"5\t1\t" + b"y" * MAX_LINE + b"\n"}, "sparse": {}}
    for name, changes in cases.items():
        body = [changes.get(k, line) for k, line in enumerate(lines)]
        if name == "sparse":  # ids far apart: the index set changes to its array form mid-block
            body = [b"%d\t1\tx.jpg\n" % (k * 2**40) for k in range(60_000)] + [b"%d\t1\tx.jpg\n" % (7 * 2**40)]
        path = tmp_path / f"{name}.lst"
        path.write_bytes(b"".join(body))
        native, python = outcome([path], True, monkeypatch), outcome([path], False, monkeypatch)
        assert native[0] == "error" and native == python, (native[:2], python[:2])


@pytest.mark.s3
def test_a_list_on_s3_reads_the_same(seaweed: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgprep.storage.s3 import S3Tuning

    client = seaweed.client()
    client.create_bucket(Bucket="lstscan")
    good = b"\xef\xbb\xbf" + b"".join(b"%d\t%d\td/%d.jpg\r\n" % (i, i % 3, i) for i in range(50_000))
    client.put_object(Bucket="lstscan", Key="good.lst", Body=good)
    client.put_object(Bucket="lstscan", Key="bad.lst", Body=good[3:] + b"3\t1\tx\n")
    storage = imgprep.Storage.from_options(endpoint_url=seaweed.endpoint_url,
                                           tuning=S3Tuning(retry_max_backoff=0.05))
    results = []
    for native in (False, True):
        monkeypatch.setenv("IMGPREP_NATIVE", "1" if native else "0")
        stream = ListStream(["s3://lstscan/good.lst"], storage)
        assert stream.ref.sha256 == hashlib.sha256(good[3:]).hexdigest()
        with pytest.raises(FormatError) as err:
            ListStream(["s3://lstscan/good.lst", "s3://lstscan/bad.lst"], storage)
        results.append((stream.ref, [repr(i) for i in stream], str(err.value)))
    assert results[0] == results[1]
    assert results[0][2] == "s3://lstscan/bad.lst: index 0 also appears in s3://lstscan/good.lst"


# --------------------------------------------------------------------------- IndexSet.add_many


def _state(ids: IndexSet) -> tuple:
    if ids._pages is None:
        return ("flat", ids.count, sorted(ids._flat), ids.repeated())
    return ("bitmap", ids.count, {page: bytes(bits) for page, bits in ids._pages.items()})


@pytest.mark.parametrize("kind", ["dense", "shuffled", "strided", "sparse", "huge", "mixed"])
def test_add_many_is_add_one_by_one(kind: str) -> None:
    rng = random.Random(kind)
    for _ in range(12):
        n = rng.randrange(0, 9000)
        if kind == "dense":
            start = rng.randrange(0, 10**6)
            values = list(range(start, start + n))
        elif kind == "shuffled":
            values = rng.sample(range(n * 2 + 1), n)
        elif kind == "strided":
            values = list(range(0, n * 300, 300))
        elif kind == "sparse":
            values = rng.sample(range(1 << 40), n)
        elif kind == "huge":
            values = [2**64 - 1 - v for v in rng.sample(range(1 << 50), n)]
        else:
            values = [rng.choice((rng.randrange(5000), rng.randrange(1 << 44))) for _ in range(n)]
        for _ in range(rng.choice((0, 1, 3))):
            if values:
                values.insert(rng.randrange(len(values) + 1), rng.choice(values))
        one = IndexSet()
        first = next((k for k, v in enumerate(values) if not one.add(v)), None)
        many, found, pos = IndexSet(), None, 0
        while pos < len(values) and found is None:
            size = rng.choice((1, 7, 500, 4096, 20000))
            chunk = values[pos : pos + size]
            if size == 1:
                found = None if many.add(chunk[0]) else pos
            elif (at := many.add_many(array("Q", chunk))) is not None:
                found = pos + at
            pos += len(chunk)
        assert found == first
        if first is None:
            assert _state(many) == _state(one)
