"""Reference reader: what DALI's MXNet reader (CPU only) sees in RecordIO files.

Run in a subprocess with the main virtualenv's python, so DALI's threads, logging and warnings
stay out of pytest.  Prints one JSON list to stdout, one object per sample in index order:
``labels`` (floats), ``len`` and ``sha256`` of the encoded image bytes, and with ``--decode`` the
``shape`` (H, W, C) that ``fn.decoders.image(device="cpu")`` produces.

    dali_reader.py --idx IDX [--decode] [--batch-size B] REC [REC ...]

Exactly N samples are read, N being the number of lines in the index (DALI wraps around at the
end of an epoch, so more would repeat).
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

import numpy as np  # noqa: E402
from nvidia.dali import fn, pipeline_def  # noqa: E402


def count_index_lines(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recs", nargs="+")
    parser.add_argument("--idx", required=True)
    parser.add_argument("--decode", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    total = count_index_lines(args.idx)
    if total == 0:
        json.dump([], _json_out)
        return
    batch_size = max(1, min(args.batch_size, total))

    @pipeline_def(batch_size=batch_size, num_threads=2, device_id=None, seed=0)
    def pipe():
        encoded, labels = fn.readers.mxnet(
            path=args.recs,
            index_path=[args.idx],
            shard_id=0,
            num_shards=1,
            random_shuffle=False,
            name="reader",
        )
        if args.decode:
            return encoded, labels, fn.decoders.image(encoded, device="cpu")
        return encoded, labels

    p = pipe()
    p.build()
    samples = []
    while len(samples) < total:
        outs = p.run()
        for i in range(len(outs[0])):
            raw = np.array(outs[0][i]).tobytes()
            sample = {
                "labels": [float(x) for x in np.array(outs[1][i]).ravel()],
                "len": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
            if args.decode:
                sample["shape"] = [int(x) for x in np.array(outs[2][i]).shape]
            samples.append(sample)
    json.dump(samples[:total], _json_out)
    _json_out.write("\n")
    _json_out.flush()


if __name__ == "__main__":
    main()
