"""IDX parsing (checked against python-mnist), the MNIST source, and MNIST packed from arrays."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.errors import FormatError, SourceError
from imgprep.formats.idx import IMAGES_MAGIC, LABELS_MAGIC, encode_idx, parse_idx, read_idx
from imgprep.sources.mnist import FASHION_CLASSES, load_mnist


def idx_images(pixels: np.ndarray) -> bytes:
    """IDX image bytes written field by field (not with imgprep's encoder)."""
    n, rows, cols = pixels.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + pixels.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def write_mnist(
    folder: Path, n_train: int = 30, n_test: int = 10, *, gz: bool = False, seed: int = 0, dotted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = np.arange(n_train + n_test, dtype=np.uint8) % 10
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    for part, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        for kind, data in (("images", idx_images(pixels[sl])), ("labels", idx_labels(labels[sl]))):
            name = f"{part}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / name).write_bytes(data)
    return pixels, labels


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_source_matches_python_mnist(tmp_path, gz) -> None:
    mnist = pytest.importorskip("mnist")
    pixels, labels = write_mnist(tmp_path, gz=gz)
    data = load_mnist(str(tmp_path))
    assert np.array_equal(data.pixels, pixels)
    assert data.labels.tolist() == labels.tolist()
    assert [c.name for c in data.classes] == list(FASHION_CLASSES)
    assert data.preset["train"].tolist() == list(range(30))
    assert data.preset["val"].tolist() == list(range(30, 40))
    assert data.image_shape == (1, 28, 28)
    # python-mnist as an independent second reader of the same files
    reader = mnist.MNIST(str(tmp_path), gz=gz)
    images, ref_labels = reader.load_training()
    assert np.array_equal(np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28), pixels[:30])
    assert list(ref_labels) == labels[:30].tolist()
    images, ref_labels = reader.load_testing()
    assert np.array_equal(np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28), pixels[30:])
    assert list(ref_labels) == labels[30:].tolist()


def test_python_mnist_names_with_a_dot_are_found(tmp_path) -> None:
    pixels, _ = write_mnist(tmp_path, dotted=True)
    assert np.array_equal(load_mnist(str(tmp_path)).pixels, pixels)


def test_idx_round_trip_and_dtypes() -> None:
    for array in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.arange(-3, 3, dtype=">i4"), np.ones(3, ">f8")):
        assert np.array_equal(parse_idx(encode_idx(array)), array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (struct.pack(">IIII", 2050, 1, 2, 2) + b"\0" * 4, "bad IDX magic 0x00000802"),
        (struct.pack(">I", 0x01000803) + b"\0" * 12, "bad IDX magic"),
        (struct.pack(">III", 2051, 1, 2), "truncated IDX header"),
        (struct.pack(">IIII", 2051, 2, 2, 2) + b"\0" * 5, "truncated IDX data: shape 2x2x2 needs 8 bytes, only 5"),
        (struct.pack(">IIII", 2051, 1, 2, 2) + b"\0" * 6, "2 trailing bytes"),
    ],
    ids=["short", "wrong-magic", "nonzero-lead", "short-header", "truncated", "trailing"],
)
def test_idx_errors(tmp_path, data, message) -> None:
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=message) as info:
        read_idx(path, magic=IMAGES_MAGIC)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_truncated_gzip_is_a_format_error(tmp_path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_labels(np.zeros(100, np.uint8)))[:-10])
    with pytest.raises(FormatError, match="gzip"):
        read_idx(path, magic=LABELS_MAGIC)


def test_count_mismatch_and_bad_labels(tmp_path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(np.zeros(9, np.uint8)))
    with pytest.raises(FormatError, match="10 images but 9 labels"):
        load_mnist(str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_labels(np.full(10, 12, np.uint8)))
    with pytest.raises(FormatError, match="record 0: label 12"):
        load_mnist(str(tmp_path))


def test_missing_and_duplicate_files(tmp_path) -> None:
    with pytest.raises(SourceError, match="no IDX files"):
        load_mnist(str(tmp_path))
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SourceError, match="t10k-labels is missing"):
        load_mnist(str(tmp_path))
    write_mnist(tmp_path)
    write_mnist(tmp_path, gz=True)
    with pytest.raises(SourceError, match="keep one"):
        load_mnist(str(tmp_path))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_idx_parser_fuzz(data) -> None:
    try:
        array = parse_idx(data)
    except FormatError as exc:
        assert "\n" not in str(exc)
        return
    assert encode_idx(array) == data


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=0, max_size=40), st.integers(0, 6))
def test_idx_size_checks_fuzz(payload, cut) -> None:
    data = struct.pack(">II", 2049, 20) + bytes(payload)
    if len(payload) == 20:
        assert parse_idx(data, magic=LABELS_MAGIC).tolist() == payload
    else:
        with pytest.raises(FormatError, match=r"truncated|trailing"):
            parse_idx(data, magic=LABELS_MAGIC)


def test_convert_writes_lossless_png_tree(tmp_path) -> None:
    from imgprep.api import convert

    pixels, labels = write_mnist(tmp_path / "in", gz=True)
    result = convert("mnist", str(tmp_path / "in"), str(tmp_path / "out"), channels=1)
    assert set(result.lists) == {"train", "val"}
    assert len(result.lists["train"]) == 30
    for item in result.lists["train"] + result.lists["val"]:
        img = Image.open(tmp_path / "out" / "images" / item.path)
        assert np.array_equal(np.asarray(img), pixels[item.index])
        assert item.labels == (float(labels[item.index]),)
    assert (tmp_path / "out" / "images" / "T-shirt_top").is_dir()
    assert result.hyperparameters["image_shape"] == "1,28,28"
    assert result.hyperparameters["num_training_samples"] == "30"


def test_prepare_packs_straight_from_the_arrays(tmp_path) -> None:
    pytest.importorskip("imgprep.packing.packer")
    from imgprep.api import prepare
    from imgprep.formats import recordio
    from imgprep.imaging.spec import TransformSpec
    from imgprep.packing.packer import PackOptions

    pixels, labels = write_mnist(tmp_path / "in")
    out = tmp_path / "out"
    result = prepare(
        "mnist",
        str(tmp_path / "in"),
        str(out),
        spec=TransformSpec(encoding="png", color=0),
        options=PackOptions(num_workers=1, quiet=True, report=False),
        split="train=0.7,val=0.3",
    )
    assert not (out / "images").exists()  # no intermediate files
    assert result.converted.hyperparameters["image_shape"] == "1,28,28"
    seen = 0
    for split in ("train", "val"):
        with recordio.RecordReader(f"{out / split}.rec", f"{out / split}.idx") as reader:
            for key in reader.keys:
                header, _, image = recordio.unpack_image_record(reader.read_key(key))
                decoded = np.asarray(Image.open(io.BytesIO(image)))
                assert np.array_equal(decoded, pixels[header.id])
                assert header.label == float(labels[header.id])
                seen += 1
    assert seen == 40
