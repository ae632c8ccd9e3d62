"""Reference reader: what MXNet 1.9.1 itself sees in a RecordIO file.

Run with the MXNet virtualenv's python (``.venv-mx/bin/python``), never imported by the tests.
Prints one JSON document to stdout; everything MXNet, OpenCV or the C++ iterators print goes to
stderr (file descriptor 1 is pointed at stderr while they run).

    indexed REC IDX           MXIndexedRecordIO, every key in index order, image header parsed
    sequential REC            MXRecordIO.read() until None, image header parsed
    raw REC [IDX]             payloads only: MXRecordIO.read() until None, or with IDX every key of
                              MXIndexedRecordIO in index order
    iter REC IDX --data-shape C,H,W --label-width N [--batch-size B]
                              mx.io.ImageRecordIter: data shape and labels per sample
    pixels REC IDX            every record's image decoded as MXNet's iterators do (cv2, RGB), hex
    write REC IDX PAYLOADS    MXIndexedRecordIO writer; PAYLOADS is a JSON file of hex strings
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings

warnings.simplefilter("ignore")

_json_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr

import cv2  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402


def image_shape(img: bytes) -> list[int] | None:
    if not img:
        return None
    try:
        decoded = cv2.imdecode(np.frombuffer(img, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    return None if decoded is None else list(decoded.shape)


def describe(payload: bytes) -> dict:
    header, img = mx.recordio.unpack(payload)
    # header.label is a float for flag 0 and an array of `flag` labels otherwise.
    labels = [float(x) for x in np.asarray(header.label, dtype=np.float64).ravel()]
    return {
        "flag": int(header.flag),
        "labels": labels,
        "id": int(header.id),
        "id2": int(header.id2),
        "payload_len": len(payload),
        "image_len": len(img),
        "sha256": hashlib.sha256(img).hexdigest(),
        "shape": image_shape(img),
    }


def cmd_indexed(args: argparse.Namespace) -> object:
    rec = mx.recordio.MXIndexedRecordIO(args.idx, args.rec, "r")
    try:
        return [{"key": int(key), **describe(rec.read_idx(key))} for key in rec.keys]
    finally:
        rec.close()


def read_all(path: str) -> list[bytes]:
    rec = mx.recordio.MXRecordIO(path, "r")
    out = []
    try:
        while True:
            item = rec.read()
            if item is None:
                return out
            out.append(item)
    finally:
        rec.close()


def cmd_sequential(args: argparse.Namespace) -> object:
    return [describe(p) for p in read_all(args.rec)]


def raw_entry(payload: bytes) -> dict:
    short = payload.hex() if len(payload) <= 64 else None
    return {"len": len(payload), "sha256": hashlib.sha256(payload).hexdigest(), "hex": short}


def cmd_raw(args: argparse.Namespace) -> object:
    if args.idx is None:
        return [raw_entry(p) for p in read_all(args.rec)]
    rec = mx.recordio.MXIndexedRecordIO(args.idx, args.rec, "r")
    try:
        return [{"key": int(key), **raw_entry(rec.read_idx(key))} for key in rec.keys]
    finally:
        rec.close()


def cmd_iter(args: argparse.Namespace) -> object:
    # round_batch=True, then drop batch.pad samples: with round_batch=False MXNet 1.9.1 reports
    # pad=0 and fills the last batch with uninitialised memory.  batch.index is all zeros for
    # this iterator, so record ids cannot be reported here (use `indexed` for those).
    shape = tuple(int(x) for x in args.data_shape.split(","))
    it = mx.io.ImageRecordIter(
        path_imgrec=args.rec,
        path_imgidx=args.idx,
        data_shape=shape,
        label_width=args.label_width,
        batch_size=args.batch_size,
        shuffle=False,
        round_batch=True,
        preprocess_threads=1,
        prefetch_buffer=1,
    )
    samples = []
    data_shape = None
    for batch in it:
        data = batch.data[0]
        data_shape = list(data.shape[1:])
        labels = batch.label[0].asnumpy().reshape(data.shape[0], -1)
        for i in range(data.shape[0] - batch.pad):
            samples.append({"labels": [float(x) for x in labels[i]]})
    return {"data_shape": data_shape, "samples": samples}


def cmd_pairs(args: argparse.Namespace) -> object:
    """Several .rec/.idx pairs in one MXNet start-up: each record read through its index."""
    out = []
    for rec_path, idx_path in zip(args.files[::2], args.files[1::2]):
        rec = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, "r")
        try:
            out.append([{"key": int(key), **describe(rec.read_idx(key))} for key in rec.keys])
        finally:
            rec.close()
    return out


def cmd_pixels(args: argparse.Namespace) -> object:
    """Every record's image as MXNet's iterators decode it (cv2.imdecode, RGB), hex-encoded."""
    rec = mx.recordio.MXIndexedRecordIO(args.idx, args.rec, "r")
    out = []
    try:
        for key in rec.keys:
            header, img = mx.recordio.unpack(rec.read_idx(key))
            pixels = cv2.cvtColor(cv2.imdecode(np.frombuffer(img, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            out.append({"id": int(header.id), "shape": list(pixels.shape), "hex": pixels.tobytes().hex()})
    finally:
        rec.close()
    return out


def cmd_write(args: argparse.Namespace) -> object:
    with open(args.payloads, encoding="utf-8") as fh:
        payloads = [bytes.fromhex(h) for h in json.load(fh)]
    rec = mx.recordio.MXIndexedRecordIO(args.idx, args.rec, "w")
    try:
        for key, payload in enumerate(payloads):
            rec.write_idx(key, payload)
    finally:
        rec.close()
    return {"count": len(payloads)}


def cmd_imagelist(args: argparse.Namespace) -> object:
    """The image format as the algorithm reads it: ``mx.image.ImageIter`` over a ``.lst`` whose
    paths are relative to ``path_root``; every sample's labels, in list order (no shuffle)."""
    shape = tuple(int(x) for x in args.data_shape.split(","))
    it = mx.image.ImageIter(
        batch_size=args.batch_size,
        data_shape=shape,
        label_width=args.label_width,
        path_imglist=args.lst,
        path_root=args.root,
        shuffle=False,
        last_batch_handle="pad",
    )
    samples = []
    for batch in it:
        data = batch.data[0]
        labels = batch.label[0].asnumpy().reshape(data.shape[0], -1)
        for i in range(data.shape[0] - batch.pad):
            samples.append({"labels": [float(x) for x in labels[i]], "mean": float(data[i].mean().asscalar())})
    return {"samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("indexed")
    p.add_argument("rec")
    p.add_argument("idx")
    p.set_defaults(fn=cmd_indexed)
    p = sub.add_parser("sequential")
    p.add_argument("rec")
    p.set_defaults(fn=cmd_sequential)
    p = sub.add_parser("raw")
    p.add_argument("rec")
    p.add_argument("idx", nargs="?")
    p.set_defaults(fn=cmd_raw)
    p = sub.add_parser("iter")
    p.add_argument("rec")
    p.add_argument("idx")
    p.add_argument("--data-shape", required=True)
    p.add_argument("--label-width", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.set_defaults(fn=cmd_iter)
    p = sub.add_parser("pairs")
    p.add_argument("files", nargs="*", help="REC IDX [REC IDX ...]")
    p.set_defaults(fn=cmd_pairs)
    p = sub.add_parser("pixels")
    p.add_argument("rec")
    p.add_argument("idx")
    p.set_defaults(fn=cmd_pixels)
    p = sub.add_parser("imagelist")
    p.add_argument("lst")
    p.add_argument("root")
    p.add_argument("--data-shape", required=True)
    p.add_argument("--label-width", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.set_defaults(fn=cmd_imagelist)
    p = sub.add_parser("write")
    p.add_argument("rec")
    p.add_argument("idx")
    p.add_argument("payloads")
    p.set_defaults(fn=cmd_write)
    args = parser.parse_args()
    result = args.fn(args)
    json.dump(result, _json_out)
    _json_out.write("\n")
    _json_out.flush()


if __name__ == "__main__":
    main()
