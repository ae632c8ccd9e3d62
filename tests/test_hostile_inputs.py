"""The hostile-input catalogue: one table of bad inputs across every entry point.

Each row builds its inputs, runs the ``imgprep`` command in this process (the same ``main`` the
console script calls) and states the outcome the README documents:

- ``refused``: a non-zero exit, exactly one ``imgprep: error: ...`` line containing ``expect``
  (never a traceback), and no output published;
- ``skipped``: exit 0, the bad record skipped with a reason containing ``expect`` (pack's
  ``OUT.skipped.tsv``, convert's notes), and every good record still written;
- ``handled``: exit 0, every good record written, and ``expect`` (when given) in the output.

The module prints ``N cases, N as specified`` when it finishes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imgfactory
import numpy as np
import pytest
from PIL import Image

from imgprep.cli.main import main
from imgprep.formats import recordio
from imgprep.formats.idx import encode_idx


@dataclass
class Setup:
    """What a case runs and what it must leave behind."""

    argv: list[object]
    out: Path  # OUT prefix (pack, merge) or OUTDIR (convert, prepare)
    good: set[object] = field(default_factory=set)  # record ids (pack) or list paths (convert)
    check: Callable[[Path], None] | None = None  # further checks of a handled case


@dataclass(frozen=True)
class Case:
    name: str
    outcome: str  # refused | skipped | handled
    expect: str
    build: Callable[[Path], Setup]
    code: int = 1  # exit status of a refusal


def run_cli(argv: list[object]) -> tuple[int, str]:
    """Exit status and everything printed (stdout + stderr) of one in-process run."""
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        try:
            main([os.fspath(a) if isinstance(a, Path) else str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return code, buf.getvalue()


# ------------------------------------------------------------------------------------------
# building blocks


def good_images(root: Path, n: int = 3) -> list[str]:
    for i in range(n):
        imgfactory.write(root / "c" / f"good{i}.jpg", imgfactory.jpeg(40, 30, seed=i))
    return [f"c/good{i}.jpg" for i in range(n)]


def pack_setup(tmp: Path, bad_rows: list[str], files: dict[str, bytes] | None = None, *flags: object) -> Setup:
    """A list of three good images plus ``bad_rows`` (ids from 10), packed with --resize 16."""
    root = tmp / "root"
    rows = [f"{i}\t{i % 2}\t{p}" for i, p in enumerate(good_images(root))]
    for rel, data in (files or {}).items():
        imgfactory.write(root / rel, data)
    lst = tmp / "in.lst"
    lst.write_text("".join(r + "\n" for r in rows + bad_rows), encoding="utf-8", newline="")
    out = tmp / "out" / "o"
    out.parent.mkdir()
    flags = flags or ("--resize", "16")
    return Setup(["pack", lst, "--root", root, "-o", out, "-j", "1", "-q", *flags], out, {0, 1, 2})


def bad_image(name: str, data: bytes, *flags: object) -> Callable[[Path], Setup]:
    return lambda tmp: pack_setup(tmp, [f"10\t1\t{name}"], {name: data}, *flags)


def bad_row(row: str) -> Callable[[Path], Setup]:
    return lambda tmp: pack_setup(tmp, [row])


GOOD_ROWS = b"0\t0\tc/good0.jpg\n1\t1\tc/good1.jpg\n2\t0\tc/good2.jpg\n"


def raw_list(data: bytes) -> Callable[[Path], Setup]:
    """A list file with exactly these bytes after building the good images."""

    def build(tmp: Path) -> Setup:
        setup = pack_setup(tmp, [])
        setup.argv[1].write_bytes(data)
        return setup

    return build


def png_with_bad_crc() -> bytes:
    data = bytearray(imgfactory.png(20, 20))
    data[29] ^= 0xFF  # IHDR's CRC (8 signature + 8 length/type + 13 data)
    return bytes(data)


def ycck_jpeg() -> bytes:
    """A CMYK JPEG whose Adobe marker says YCCK (transform 2): decoders convert it to CMYK."""
    data = bytearray(imgfactory.jpeg(24, 16, mode="CMYK"))
    at = data.index(b"Adobe") + 11
    data[at] = 2
    return bytes(data)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``x``height``: a few hundred bytes on disk."""
    raw = zlib.compress(b"\0" * (width // 8 + 1) * 2)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def symlinked_image(kind: str) -> Callable[[Path], Setup]:
    """A list row whose path reaches a file outside the root through a symlink."""

    def build(tmp: Path) -> Setup:
        setup = pack_setup(tmp, ["10\t1\tlink/secret.jpg" if kind == "folder" else "10\t1\tc/secret.jpg"])
        secret = tmp / "outside"
        imgfactory.write(secret / "secret.jpg", imgfactory.jpeg(20, 20))
        root = tmp / "root"
        if kind == "folder":
            os.symlink(secret, root / "link")
        else:
            os.symlink(secret / "secret.jpg", root / "c" / "secret.jpg")
        return setup

    return build


def fifo_image(tmp: Path) -> Setup:
    """A named pipe where an image should be: opening it must not wait for a writer."""
    setup = pack_setup(tmp, ["10\t1\tc/pipe.jpg"])
    os.mkfifo(tmp / "root" / "c" / "pipe.jpg")
    return setup


def symlink_inside(tmp: Path) -> Setup:
    """A row whose image is a symlink to another image of the same root: read like any file."""
    setup = pack_setup(tmp, ["10\t1\tc/alias.jpg"])
    os.symlink(tmp / "root" / "c" / "good0.jpg", tmp / "root" / "c" / "alias.jpg")
    setup.good.add(10)
    return setup


def exif_orientations(tmp: Path) -> Setup:
    root = tmp / "root"
    rows = []
    for o in range(1, 9):
        imgfactory.write(root / f"o{o}.jpg", imgfactory.jpeg(40, 20, orientation=o, seed=o))
        rows.append(f"{o}\t0\to{o}.jpg\n")
    (tmp / "in.lst").write_text("".join(rows))
    out = tmp / "out" / "o"
    out.parent.mkdir()

    def check(out: Path) -> None:
        with recordio.RecordReader(f"{out}.rec", f"{out}.idx") as reader:
            for key in reader.keys:
                header, _, jpeg = recordio.unpack_image_record(reader.read_key(key))
                size = Image.open(io.BytesIO(jpeg)).size
                assert size == ((32, 16) if header.id < 5 else (16, 32)), (header.id, size)

    argv = ["pack", tmp / "in.lst", "--root", root, "-o", out, "-j", "1", "-q", "--resize", "16"]
    return Setup(argv, out, set(range(1, 9)), check)


def ten_mb_path(tmp: Path) -> Setup:
    return pack_setup(tmp, ["10\t1\t../" + "a" * 10_000_000])


def list_is_a_directory(tmp: Path) -> Setup:
    setup = pack_setup(tmp, [])
    setup.argv[1] = tmp / "root"
    return setup


def output_is(prefix: str) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        setup = pack_setup(tmp, [])
        setup.argv[5] = (str(tmp / "out") + "/") if prefix == "dir/" else prefix
        setup.argv += ["--endpoint-url", "http://127.0.0.1:9"]  # never contacted
        return setup

    return build


def output_under_a_file(tmp: Path) -> Setup:
    setup = pack_setup(tmp, [])
    (tmp / "afile").write_text("x")
    setup.argv[5] = tmp / "afile" / "o"
    return setup


# --- class folders and Caltech


def folder_tree(tmp: Path, classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    root = tmp / "tree"
    for ci, c in enumerate(classes):
        for i in range(2):
            imgfactory.write(root / c / f"{i}.jpg", imgfactory.jpeg(20, 20, seed=ci * 10 + i))
    return root


def convert_setup(tmp: Path, kind: str, src: Path, *flags: object) -> Setup:
    out = tmp / "lists"
    return Setup(["convert", kind, src, "-o", out, "--split", "train=1.0", *flags], out)


def folders_case(mutate: Callable[[Path, Path], None], good: set[str]) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        root = folder_tree(tmp)
        mutate(tmp, root)
        setup = convert_setup(tmp, "folders", root)
        setup.good = good
        return setup

    return build


def sibling_link(tmp: Path, root: Path) -> None:
    os.symlink(root / "dog", root / "a_link")


def loop_link(tmp: Path, root: Path) -> None:
    os.symlink("..", root / "cat" / "up")


def bad_names(tmp: Path, root: Path) -> None:
    imgfactory.write(root / "cat" / "x\n0\t0\tforged.jpg", imgfactory.jpeg(20, 20))
    imgfactory.write(root / "dog" / "tab\there.jpg", imgfactory.jpeg(20, 20))


def non_utf8_names(tmp: Path, root: Path) -> None:
    base = os.fsencode(root)
    os.mkdir(os.path.join(base, b"caf\xe9"))
    with open(os.path.join(base, b"caf\xe9", b"1.jpg"), "wb") as fh:
        fh.write(imgfactory.jpeg(20, 20))
    with open(os.path.join(base, b"cat", b"\xff.jpg"), "wb") as fh:
        fh.write(imgfactory.jpeg(20, 20))


def link_outside(tmp: Path, root: Path) -> None:
    imgfactory.write(tmp / "secret" / "s.jpg", imgfactory.jpeg(20, 20))
    os.symlink(tmp / "secret", root / "stolen")


def link_multiplication(tmp: Path) -> Setup:
    """Two links per level to the next level, 40 levels: 2^40 paths to the deepest folder."""
    root = folder_tree(tmp)
    levels = [root / "dog" / f"l{i}" for i in range(40)]
    for level in levels:
        level.mkdir()
    for here, deeper in itertools.pairwise(levels):
        os.symlink(deeper, here / "a")
        os.symlink(deeper, here / "b")
    return convert_setup(tmp, "folders", root)


def device_as(kind: str) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        if kind == "list":
            setup = pack_setup(tmp, [])
            setup.argv[1] = "/dev/zero"
            return setup
        return convert_setup(tmp, kind, Path("/dev/zero"))

    return build


def fifo_coco(tmp: Path) -> Setup:
    os.mkfifo(tmp / "fifo.json")
    return convert_setup(tmp, "coco", tmp / "fifo.json")


TREE = {"cat/0.jpg", "cat/1.jpg", "dog/0.jpg", "dog/1.jpg"}


def one_class(tmp: Path) -> Setup:
    setup = convert_setup(tmp, "folders", folder_tree(tmp, ("cat",)))
    setup.good = {"cat/0.jpg", "cat/1.jpg"}
    return setup


def caltech_empty_class(tmp: Path) -> Setup:
    root = tmp / "256_ObjectCategories"
    for name in ("001.ak47", "003.backpack"):
        imgfactory.write(root / name / "1.jpg", imgfactory.jpeg(20, 20))
    (root / "002.american-flag").mkdir()
    return convert_setup(tmp, "caltech", root)


# --- COCO


def coco_doc() -> dict:
    return {
        "images": [{"id": i, "file_name": f"im{i}.jpg", "width": 20, "height": 20} for i in range(3)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "area": 10.0} for i in range(3)],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
    }


def coco_case(mutate: Callable[[dict], object], *flags: object, prepare: bool = False) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        doc = coco_doc()
        mutate(doc)
        path = tmp / "instances.json"
        path.write_text(json.dumps(doc))
        for i in range(3):
            imgfactory.write(tmp / "img" / f"im{i}.jpg", imgfactory.jpeg(20, 20, seed=i))
        if prepare:
            out = tmp / "prepared"
            return Setup(["prepare", "coco", path, "-o", out, "--image-root", tmp / "img", "-j", "1", *flags], out)
        return convert_setup(tmp, "coco", path, *flags)

    return build


def set_image(key: str, value: object, i: int = 1) -> Callable[[dict], object]:
    return lambda doc: doc["images"][i].__setitem__(key, value)


def coco_deep(tmp: Path) -> Setup:
    path = tmp / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    return convert_setup(tmp, "coco", path)


# --- Ground Truth manifests


def gt(i: int, cls: object, ref: str | None = None) -> str:
    ref = ref or f"s3://bucket/data/img{i}.jpg"
    meta = {"class-name": f"class{cls}", "type": "groundtruth/image-classification"}
    return json.dumps({"source-ref": ref, "label": cls, "label-metadata": meta})


def manifest_case(lines: list[str], prepare: bool = False) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        path = tmp / "output.manifest"
        path.write_text("".join(line + "\n" for line in [gt(0, 0), gt(1, 1), *lines]))
        if prepare:
            out = tmp / "prepared"
            root = f"s3://bucket/data/={tmp / 'copy'}"
            (tmp / "copy").mkdir()
            return Setup(["prepare", "manifest", path, "-o", out, "--root", root, "-j", "1"], out)
        return convert_setup(tmp, "manifest", path)

    return build


def huge_label_matrix(tmp: Path) -> Setup:
    """44,000 multi-label records and one class id of 99,999: a 4.4e9-cell matrix asked for."""
    path = tmp / "output.manifest"
    lines = [json.dumps({"source-ref": f"s3://b/d/{i}.jpg", "label": [0]}) for i in range(44_000)]
    lines.append(json.dumps({"source-ref": "s3://b/d/last.jpg", "label": [99_999]}))
    path.write_text("\n".join(lines) + "\n")
    return convert_setup(tmp, "manifest", path)


# --- MNIST IDX


def idx_images(n: int, rows: int = 4, cols: int = 4) -> bytes:
    return encode_idx(np.zeros((n, rows, cols), dtype=np.uint8))


def idx_labels(n: int) -> bytes:
    return encode_idx((np.arange(n) % 10).astype(np.uint8))


def mnist_case(images: bytes, labels: bytes, gz: bool = False) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        folder = tmp / "mnist"
        folder.mkdir()
        suffix = ".gz" if gz else ""
        (folder / f"train-images-idx3-ubyte{suffix}").write_bytes(images)
        (folder / f"train-labels-idx1-ubyte{suffix}").write_bytes(gzip.compress(labels) if gz else labels)
        return convert_setup(tmp, "mnist", folder)

    return build


def gzip_bomb(declared_rows: int) -> bytes:
    """A gzip whose IDX header declares ``declared_rows`` 1000x1000 images, all zeros."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = co.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, declared_rows, 1000, 1000))
    block = b"\0" * (1 << 20)
    for _ in range(declared_rows):
        out += co.compress(block)
    return out + co.flush()


def lying_gzip() -> bytes:
    """The header declares two 4x4 images; 50 MB of zeros follow."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = co.compress(idx_images(2))
    block = b"\0" * (1 << 20)
    for _ in range(50):
        out += co.compress(block)
    return out + co.flush()


# --- merge


def shards(tmp: Path) -> Path:
    setup = pack_setup(tmp, [], None, "--resize", "16", "--shard-records", "2")
    code, text = run_cli(setup.argv)
    assert code == 0, text
    return setup.out


def merge_into_own_shard(tmp: Path) -> Setup:
    prefix = shards(tmp)
    return Setup(["merge", prefix, "-o", f"{prefix}-00000", "-q"], tmp / "never")


def merge_non_utf8_index(tmp: Path) -> Setup:
    prefix = shards(tmp)
    Path(f"{prefix}-00001.idx").write_bytes(b"\xff\xfe0\t0\n")
    return Setup(["merge", prefix, "-o", tmp / "merged", "-q"], tmp / "merged")


def merge_damaged_shard(damage: Callable[[bytes], bytes], record: bool = True) -> Callable[[Path], Setup]:
    """Shard 1 replaced by ``damage(its bytes)``, its size kept a multiple of 4; without its
    dataset record (whose sizes merge otherwise trusts) unless ``record``."""
    def build(tmp: Path) -> Setup:
        prefix = shards(tmp)
        rec = Path(f"{prefix}-00001.rec")
        rec.write_bytes(damage(rec.read_bytes()))
        if not record:
            Path(f"{prefix}.dataset.json").unlink()
        return Setup(["merge", prefix, "-o", tmp / "merged", "-q"], tmp / "merged")
    return build


# --- processing (the SageMaker entry point): platform config files and job options


def platform_config(name: str, text: str | None) -> Callable[[Path], Setup]:
    """``processing pack`` under an ``/opt/ml`` whose ``config/NAME`` holds ``text`` (None: a FIFO)."""
    def build(tmp: Path) -> Setup:
        setup = pack_setup(tmp, [])
        config = tmp / "opt_ml" / "config"
        config.mkdir(parents=True)
        if text is None:
            os.mkfifo(config / name)
        else:
            (config / name).write_text(text)
        return Setup(["processing", *setup.argv, "--opt-ml", tmp / "opt_ml"], setup.out)
    return build


def options_file(name: str, data: bytes | None) -> Callable[[Path], Setup]:
    """``processing --config NAME`` holding ``data`` (None: /dev/zero)."""
    def build(tmp: Path) -> Setup:
        path = Path("/dev/zero") if data is None else tmp / name
        if data is not None:
            path.write_bytes(data)
        return Setup(["processing", "--config", path], tmp / "never")
    return build


# --- inspect, verify: records and lists read back


def records_of(*headers: tuple[int, float]) -> Callable[[Path], Setup]:
    """A ``.rec`` of one good JPEG per ``(flag, label)`` header (ids from 1), given to inspect."""
    def build(tmp: Path) -> Setup:
        image = imgfactory.jpeg(40, 30)
        with recordio.RecordWriter(tmp / "h.rec") as writer:
            for i, (flag, label) in enumerate(headers, 1):
                writer.write(struct.pack("<IfQQ", flag, label, i, 0) + image)
        return Setup(["inspect", tmp / "h.rec"], tmp / "never")
    return build


def inspect_list(label: str) -> Callable[[Path], Setup]:
    def build(tmp: Path) -> Setup:
        paths = good_images(tmp / "img")
        rows = [f"{i}\t0\t{p}" for i, p in enumerate(paths)] + [f"9\t{label}\t{paths[0]}"]
        (tmp / "in.lst").write_text("\n".join(rows) + "\n")
        return Setup(["inspect", tmp / "in.lst", "--root", tmp / "img"], tmp / "never")
    return build


def inspect_odd_image(kind: str) -> Callable[[Path], Setup]:
    """A list whose last image is a symlink to a file outside the root, or a FIFO."""
    def build(tmp: Path) -> Setup:
        paths = good_images(tmp / "img")
        odd = tmp / "img" / "c" / "odd.jpg"
        if kind == "fifo":
            os.mkfifo(odd)
        else:
            imgfactory.write(tmp / "secret.jpg", imgfactory.jpeg(20, 20))
            odd.symlink_to(tmp / "secret.jpg")
        rows = [f"{i}\t0\t{p}" for i, p in enumerate([*paths, "c/odd.jpg"])]
        (tmp / "in.lst").write_text("\n".join(rows) + "\n")
        return Setup(["inspect", tmp / "in.lst", "--root", tmp / "img"], tmp / "never")
    return build


# ------------------------------------------------------------------------------------------
# the table

CASES = [
    # images (pack): skipped with the decoder's reason, or handled
    Case("truncated JPEG", "skipped", "cannot decode image", bad_image("cut.jpg", imgfactory.truncated_jpeg(keep=0.3))),
    Case("JPEG with a garbage tail", "handled", "", bad_image("tail.jpg", imgfactory.jpeg(30, 20) + b"junk" * 99)),
    Case("not an image", "skipped", "not an image", bad_image("junk.jpg", imgfactory.not_an_image())),
    Case("empty file", "skipped", "not an image", bad_image("empty.jpg", b"")),
    Case("PNG with a bad CRC", "skipped", "", bad_image("crc.png", png_with_bad_crc())),
    Case("CMYK JPEG", "handled", "", bad_image("cmyk.jpg", imgfactory.jpeg(24, 16, mode="CMYK"))),
    Case("YCCK JPEG", "handled", "", bad_image("ycck.jpg", ycck_jpeg())),
    Case("EXIF orientations 1-8", "handled", "", exif_orientations),
    Case("16-bit PNG", "handled", "", bad_image("deep.png", imgfactory.png(20, 20, mode="I;16"))),
    Case("palette PNG with alpha", "handled", "", bad_image("p.png", imgfactory.encode(
        imgfactory.photo(20, 20, "P"), "PNG", transparency=0))),
    Case("1x1 image", "handled", "", bad_image("dot.png", imgfactory.png(1, 1))),
    Case("bomb-sized PNG header", "skipped", "decompression-bomb limit", bad_image("bomb.png", bomb_png(30000, 30000))),
    Case("--resize of a thin strip", "skipped", "above the limit",
         bad_image("strip.png", imgfactory.png(5000, 1), "--resize", "2000")),
    Case("--size beyond --max-pixels", "refused", "--size 20000x20000 makes images above the limit",
         bad_image("x.jpg", imgfactory.jpeg(8, 8), "--size", "20000x20000"), code=2),
    Case("missing image", "skipped", "cannot read", bad_row("10\t1\tc/missing.jpg")),
    Case("image path is a folder", "skipped", "not a regular file (a folder)", bad_row("10\t1\tc")),
    Case("FIFO among the images", "skipped", "not a regular file", fifo_image),
    Case("symlinked image leading outside the root", "skipped", "symlink leads outside the image root",
         symlinked_image("file")),
    Case("symlinked folder leading outside the root", "skipped", "leads outside the image root",
         symlinked_image("folder")),
    Case("symlinked image inside the root", "handled", "", symlink_inside),
    # lists (pack): refused with file and line, or handled
    Case("CRLF list", "handled", "", raw_list(GOOD_ROWS.replace(b"\n", b"\r\n"))),
    Case("UTF-8 BOM list", "handled", "", raw_list(b"\xef\xbb\xbf" + GOOD_ROWS)),
    Case("negative label", "handled", "", raw_list(b"0\t-1\tc/good0.jpg\n1\t-2.5\tc/good1.jpg\n2\t0\tc/good2.jpg\n")),
    Case("NaN label", "refused", "in.lst:4: label 'nan' is not a finite number", bad_row("10\tnan\tc/good0.jpg")),
    Case("label beyond float32", "refused", "in.lst:4: label '1e39' is beyond float32's range",
         bad_row("10\t1e39\tc/good0.jpg")),
    Case("id of 2^64", "refused", "in.lst:4: index 18446744073709551616 does not fit in 64 bits",
         bad_row(f"{2**64}\t1\tc/good0.jpg")),
    Case("duplicate id", "refused", "in.lst:4: duplicate index 1 (first on line 2)", bad_row("1\t1\tc/good0.jpg")),
    Case("absolute path", "refused", "in.lst:4: absolute image path '/etc/passwd'", bad_row("10\t1\t/etc/passwd")),
    Case("path climbing out with ..", "refused", "in.lst:4: image path 'c/../../x.jpg' escapes the image root",
         bad_row("10\t1\tc/../../x.jpg")),
    Case("10 MB path", "refused", "in.lst:4: line longer than 1048576 characters", ten_mb_path),
    Case("control character in a path", "refused", "contains the control character U+0001",
         bad_row("10\t1\tc/a\x01.jpg")),
    Case("list is a directory", "refused", "is a directory (expected a .lst file)", list_is_a_directory),
    Case("list is /dev/zero", "refused", "/dev/zero: not a regular file", device_as("list")),
    Case("COCO file is a FIFO", "refused", "fifo.json: not a regular file", fifo_coco),
    Case("COCO file is /dev/zero", "refused", "/dev/zero: not a regular file", device_as("coco")),
    Case("manifest is /dev/zero", "refused", "/dev/zero:1: line longer than 16777216 characters",
         device_as("manifest")),
    Case("list not UTF-8", "refused", "in.lst:1: not UTF-8 text", raw_list(b"0\t0\tc/\xff.jpg\n")),
    Case("-o naming a folder", "refused", "names no file", output_is("dir/"), code=2),
    Case("-o ''", "refused", "names no file", output_is(""), code=2),
    Case("invalid bucket name", "refused", "'Bad!Bucket' is not a bucket name", output_is("s3://Bad!Bucket/o"), code=2),
    Case("output under a file", "refused", "afile: cannot create the output folder (a file is in the way)",
         output_under_a_file),
    # class folders and Caltech (convert)
    Case("symlink to a sibling class folder", "handled", "", folders_case(
        sibling_link, TREE | {"a_link/0.jpg", "a_link/1.jpg"})),
    Case("symlink loop", "handled", "1 folder symlink loop(s) not followed", folders_case(loop_link, TREE)),
    Case("symlink leading outside the root", "handled",
         "1 path(s) reached through a symlink leading outside the image root not listed",
         folders_case(link_outside, TREE)),
    Case("newline and tabs in a file name", "skipped", "2 file or folder name(s) skipped",
         folders_case(bad_names, TREE)),
    Case("non-UTF-8 file and folder names", "skipped", "2 file or folder name(s) skipped",
         folders_case(non_utf8_names, TREE)),
    Case("symlinks multiplying paths to a folder", "refused", "reached through symlinks more than 64 times",
         link_multiplication),
    Case("negative --seed", "refused", "--seed: -5 is not in the range x>=0",
         lambda tmp: convert_setup(tmp, "folders", folder_tree(tmp), "--seed", "-5"), code=2),
    Case("one-class dataset", "handled", "only one class", one_class),
    Case("empty Caltech class folder", "refused", "class folder '002.american-flag' holds no usable images",
         caltech_empty_class),
    # COCO (convert, prepare)
    Case("COCO file_name with newline and tabs", "refused", "images[1] (id 1): name 'x\\n9\\t1\\t1\\tforged.jpg'",
         coco_case(set_image("file_name", "x\n9\t1\t1\tforged.jpg"))),
    Case("COCO absolute file_name (prepare)", "refused", "images[1] (id 1): absolute image path '/etc/hostname'",
         coco_case(set_image("file_name", "/etc/hostname"), prepare=True)),
    Case("COCO ../ file_name (prepare)", "refused", "images[1] (id 1): image path '../x.jpg' escapes the image root",
         coco_case(set_image("file_name", "../x.jpg"), prepare=True)),
    Case("COCO missing file_name", "refused", "images[0] (id 0): 'file_name' missing or not a string",
         coco_case(lambda d: d["images"][0].pop("file_name"))),
    Case("COCO id of the wrong type", "refused", "images[2] (id '2'): 'id' missing or not an integer",
         coco_case(set_image("id", "2", 2))),
    Case("COCO annotation of an unknown category", "refused", "annotations[0] (id 0): category_id 7 is not among",
         coco_case(lambda d: d["annotations"][0].__setitem__("category_id", 7))),
    Case("COCO nested 200,000 deep", "refused", "deep.json: JSON nested too deeply", coco_deep),
    Case("COCO category name with a lone surrogate", "refused", "(id 2): name 'car\\udcff' contains a lone",
         coco_case(lambda d: d["categories"][1].__setitem__("name", "car\udcff"))),
    Case("--categories '²'", "refused", "no category named or numbered '²'",
         coco_case(lambda d: None, "--categories", "²")),
    # Ground Truth manifests (convert, prepare)
    Case("manifest source-ref with .. (prepare)", "refused", "record 3: image path '../../etc/x.jpg' escapes",
         manifest_case([gt(2, 0, "s3://bucket/data/../../etc/x.jpg")], prepare=True)),
    Case("manifest class id 10^12", "refused", "output.manifest:3: 'label': class id 1000000000000 is above",
         manifest_case([gt(2, 10**12)])),
    Case("manifest asking for a huge label matrix", "refused", "44001 images x 100000 classes is a label matrix",
         huge_label_matrix),
    Case("manifest label '²'", "refused", "output.manifest:3: 'label' is not a class id: '²'",
         manifest_case([gt(2, "²")])),
    Case("manifest nested 200,000 deep", "refused", "output.manifest:3: JSON nested too deeply",
         manifest_case(["[" * 200_000 + "]" * 200_000])),
    Case("manifest line that is not JSON", "refused", "output.manifest:3: not JSON", manifest_case(["{oops"])),
    Case("manifest source-ref with a newline", "refused", "output.manifest:3: 'source-ref': name",
         manifest_case([gt(2, 0, "s3://bucket/data/x\n9\t0\ty.jpg")])),
    # MNIST IDX (convert)
    Case("IDX wrong magic", "refused", "bad IDX magic 0x00000801 (expected 0x00000803)",
         mnist_case(idx_labels(3), idx_labels(3))),
    Case("IDX truncated", "refused", "truncated IDX data", mnist_case(idx_images(3)[:-5], idx_labels(3))),
    Case("IDX count mismatch", "refused", "3 images but 4 labels", mnist_case(idx_images(3), idx_labels(4))),
    Case("IDX 0x0 images", "refused", "images of 0x0 pixels hold nothing",
         mnist_case(idx_images(3, 0, 0), idx_labels(3))),
    Case("IDX gzip bomb", "refused", "more than 200 times as many (a decompression bomb?)",
         mnist_case(gzip_bomb(40), idx_labels(40), gz=True)),
    Case("IDX gzip inflating past its header", "refused", "trailing bytes after the IDX data",
         mnist_case(lying_gzip(), idx_labels(2), gz=True)),
    # merge
    Case("merge onto one of its own shards", "refused", "is one of the shards being merged", merge_into_own_shard,
         code=2),
    Case("merge with a non-UTF-8 index", "refused", "o-00001.idx: not UTF-8 text", merge_non_utf8_index),
    Case("merge a shard cut inside its last record", "refused", "o-00001.rec: record part at byte ",
         merge_damaged_shard(lambda data: data[: len(data) - 8])),
    Case("merge a shard of random bytes", "refused", "o-00001.rec: no RecordIO record at byte 0",
         merge_damaged_shard(lambda data: bytes(range(256)) * 4)),
    Case("merge a shard with a zero-filled tail", "refused", "o-00001.rec: no RecordIO magic number at byte",
         merge_damaged_shard(lambda data: data + bytes(64), record=False)),
    Case("inspect a symlinked image leading outside the root", "refused",
         "odd.jpg: symlink leads outside the image root", inspect_odd_image("link")),
    Case("inspect a FIFO among the images", "refused", "odd.jpg: not a regular file", inspect_odd_image("fifo")),
    # processing
    Case("ProcessingInputs not a list", "refused", "processingjobconfig.json: 'ProcessingInputs' must be a list",
         platform_config("processingjobconfig.json", '{"ProcessingInputs": 5}')),
    Case("LocalPath not a string", "refused", "ProcessingInputs[0]: 'LocalPath' and 'S3Uri' must be strings",
         platform_config("processingjobconfig.json", '{"ProcessingInputs": [{"S3Input": {"LocalPath": 5}}]}')),
    Case("hosts that are not names", "refused", "resourceconfig.json: 'hosts' must list host names",
         platform_config("resourceconfig.json", '{"current_host": "a", "hosts": [{"x": 1}, "a"]}')),
    Case("resourceconfig.json is a FIFO", "refused", "resourceconfig.json: not a regular file",
         platform_config("resourceconfig.json", None)),
    Case("options file not UTF-8", "refused", "job.json: not UTF-8 text", options_file("job.json", b"\xff\xfe{")),
    Case("options file is /dev/zero", "refused", "/dev/zero: not a regular file", options_file("", None)),
    Case("YAML options nested 100,000 deep", "refused", "job.yaml: YAML nested too deeply",
         options_file("job.yaml", b"a: " + b"[" * 100_000)),
    # inspect
    Case("inspect a record labelled NaN", "refused", "h.rec: record at byte 1380 (id 2): label nan is not a class",
         records_of((0, 0.0), (0, float("nan")))),
    Case("inspect a record labelled infinity", "refused", "(id 1): label inf is not a class index",
         records_of((0, float("inf")))),
    Case("inspect a record labelled 3e9", "refused", "(id 1): label 3e+09 is not a class index in [0, 99999]",
         records_of((0, 3e9))),
    Case("inspect a record labelled 0.5", "refused", "(id 1): label 0.5 is not a class index",
         records_of((0, 0.5))),
    Case("inspect a record claiming 2^31 labels", "refused", "h.rec: record at byte 0: image record header says",
         records_of((1 << 31, 0.0))),
    Case("inspect a list labelled 3e9", "refused", "in.lst: entry #3 (id 9): label 3e+09 is not a class index",
         inspect_list("3e9")),
    Case("inspect a list labelled -1", "refused", "in.lst: entry #3 (id 9): label -1 is not a class index",
         inspect_list("-1")),
]

RESULTS: dict[str, bool] = {}


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    ok = sum(RESULTS.values())
    line = f"hostile-input catalogue: {len(RESULTS)} cases, {ok} as specified"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{line}")


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(out.name)) if out.parent.is_dir() else []


def written_ids(out: Path) -> set[int]:
    with recordio.RecordReader(f"{out}.rec", f"{out}.idx") as reader:
        return {recordio.unpack_image_record(reader.read_key(k))[0].id for k in reader.keys}


def listed_paths(outdir: Path) -> set[str]:
    paths = set()
    for lst in outdir.glob("*.lst"):
        for line in lst.read_text(encoding="utf-8").splitlines():
            paths.add(line.split("\t")[-1])
    return paths


def check_case(case: Case, tmp: Path) -> None:
    setup = case.build(tmp)
    code, text = run_cli(setup.argv)
    assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    if case.outcome == "refused":
        lines = text.strip().splitlines()
        assert code == case.code, text
        assert len(lines) == 1 and lines[0].startswith("imgprep: error: "), text[-3000:]
        assert case.expect in lines[0], lines[0]
        assert len(lines[0]) < 600, f"{len(lines[0])} characters"
        if setup.argv[0] in ("convert", "prepare"):
            assert not setup.out.exists() or not list(setup.out.iterdir())
        elif setup.argv[0] in ("pack", "merge"):
            assert not [p for p in outputs(setup.out) if p.suffix in (".rec", ".idx")]
        return
    assert code == 0, text[-3000:]
    if setup.argv[0] == "pack":
        assert written_ids(setup.out) >= setup.good, "a good record was lost"
        report = Path(f"{setup.out}.skipped.tsv")
        if case.outcome == "skipped":
            reasons = report.read_text().splitlines()[1:]
            assert len(reasons) == 1 and case.expect in reasons[0], reasons
            assert written_ids(setup.out) == setup.good
        else:
            assert not report.exists(), report.read_text()
    else:
        paths = listed_paths(setup.out)
        assert paths == setup.good, sorted(paths ^ setup.good)
        assert case.expect in text, text[-3000:]
    if setup.check is not None:
        setup.check(setup.out)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    RESULTS[case.name] = False
    check_case(case, tmp_path)
    RESULTS[case.name] = True


# ------------------------------------------------------------------------------------------
# what reaches the user when something is not bad input


@pytest.fixture
def crashing_command(monkeypatch, tmp_path):
    """A ``boom`` command that fails the way a bug would; bug logs go to ``tmp_path``."""
    import tempfile

    import click

    from imgprep.cli import main as cli_main

    @click.command()
    def boom() -> None:
        raise KeyError("a key that is not there")

    monkeypatch.setattr(cli_main.LazyGroup, "get_command", lambda self, ctx, name: boom if name == "boom" else None)
    monkeypatch.setattr(cli_main, "_DEBUG", {"on": False})
    monkeypatch.setenv("IMGPREP_DEBUG", "")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_a_bug_is_one_line_naming_the_log_with_the_traceback(crashing_command) -> None:
    code, text = run_cli(["boom"])
    lines = text.strip().splitlines()
    assert code == 1 and len(lines) == 1, text
    assert lines[0].startswith("imgprep: internal error (a bug in imgprep, please report it): KeyError: ")
    log = Path(lines[0].split("traceback in ", 1)[1].split(" ", 1)[0])
    assert "Traceback" in log.read_text() and "a key that is not there" in log.read_text()


def test_debug_shows_the_traceback(crashing_command) -> None:
    code, text = run_cli(["--debug", "boom"])
    assert code == 1
    assert "Traceback (most recent call last)" in text
    assert text.strip().splitlines()[-1].startswith("imgprep: internal error")


def test_an_os_error_is_one_line_naming_the_file(monkeypatch, tmp_path) -> None:
    from imgprep.cli import main as cli_main

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out.rec"))

    monkeypatch.setattr(cli_main.cli, "main", full)
    code, text = run_cli(["pack"])
    assert (code, text) == (1, f"imgprep: error: {tmp_path / 'out.rec'}: No space left on device\n")
