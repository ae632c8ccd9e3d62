"""`pack --resume` given a tampered or corrupt ``OUT.progress.json``: one line, and nothing packed twice.

The progress file says where a run goes on (list items consumed through each shard); totals that
disagree with the shards or the list would pack items twice or never, so they are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_hostile_inputs import pack_setup, run_cli

from imgprep.formats import recordio


def packed_progress(tmp: Path) -> tuple[list[object], Path, dict]:
    """A finished 2-shard run turned back into a checkpoint after its last shard: (argv, prefix, progress)."""
    setup = pack_setup(tmp, [], None, "--resize", "16", "--shard-records", "2")
    code, text = run_cli(setup.argv)
    assert code == 0, text
    record_path = Path(f"{setup.out}.dataset.json")
    record = json.loads(record_path.read_text())
    record_path.unlink()
    progress = {"kind": "imgprep.progress", "record": record, "consumed": [2, 3], "skipped_through": [0, 0],
                "skipped": [], "open": None}
    return [*setup.argv, "--resume"], setup.out, progress


def two_shards(progress: dict, **open_: object) -> dict:
    record = {**progress["record"], "shards": progress["record"]["shards"][:1], "records": 2}
    state = {"number": 1, "rec_tmp": "a.part", "idx_tmp": "b.part", "records": 0, "rec_bytes": 0,
             "idx_bytes": 0, "consumed": 2, **open_}
    return {**progress, "record": record, "consumed": [2], "skipped_through": [0], "open": state}


CASES = {
    "not an object": (lambda p: [], "unreadable progress file (not a progress file)"),
    "a string": (lambda p: "x", "unreadable progress file (not a progress file)"),
    "consumed infinite": (lambda p: {**p, "consumed": [float("inf"), 3]}, "(inf is not a count)"),
    "consumed 10^30": (lambda p: {**p, "consumed": [10**30, 10**30]}, "shard 1 holds more records and skips"),
    "consumed negative": (lambda p: {**p, "consumed": [-5, 3]}, "(-5 is not a count)"),
    "consumed decreasing": (lambda p: {**p, "consumed": [3, 0]}, "running totals [3, 0] decrease"),
    "consumed a fraction": (lambda p: {**p, "consumed": [1.5, 3]}, "(1.5 is not a count)"),
    "consumed fewer than records": (lambda p: {**p, "consumed": [1, 2]}, "shard 0 holds more records and skips"),
    "consumed past the list": (lambda p: {**p, "consumed": [2, 9]}, "9 list items consumed of 3"),
    "skipped through more than listed": (lambda p: {**p, "skipped_through": [0, 1]}, "shard 1 holds more"),
    "open shard going back": (lambda p: two_shards(p, consumed=1), "1 list items consumed of 3"),
    "open shard of 10^20 items": (lambda p: two_shards(p, consumed=10**20), "100000000000000000000 list items"),
    "open shard of negative size": (lambda p: two_shards(p, rec_bytes=-8), "(-8 is not a count)"),
}


@pytest.mark.parametrize("name", CASES)
def test_a_tampered_progress_file_is_one_line(name: str, tmp_path: Path) -> None:
    argv, prefix, progress = packed_progress(tmp_path)
    tamper, expect = CASES[name]
    Path(f"{prefix}.progress.json").write_text(json.dumps(tamper(progress)))
    code, text = run_cli(argv)
    lines = text.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("imgprep: error: "), text[-3000:]
    assert "o.progress.json: " in lines[0] and expect in lines[0], lines[0]
    assert not Path(f"{prefix}.dataset.json").exists()


def test_a_progress_file_nested_200000_deep_is_one_line(tmp_path: Path) -> None:
    argv, prefix, _ = packed_progress(tmp_path)
    Path(f"{prefix}.progress.json").write_text("[" * 200_000 + "]" * 200_000)
    code, text = run_cli(argv)
    assert code == 1 and text.startswith(f"imgprep: error: {prefix}.progress.json: unreadable progress file"), text


def test_an_honest_progress_file_still_resumes(tmp_path: Path) -> None:
    argv, prefix, progress = packed_progress(tmp_path)
    Path(f"{prefix}.progress.json").write_text(json.dumps(progress))
    code, text = run_cli(argv)
    assert code == 0, text
    ids = []
    for number in range(2):
        with recordio.RecordReader(f"{prefix}-{number:05d}.rec") as reader:
            ids += [recordio.unpack_image_record(p)[0].id for p in reader]
    assert sorted(ids) == [0, 1, 2]


@pytest.mark.parametrize("name", ["progress", "dataset"])
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_a_progress_or_dataset_record_that_is_no_file_is_one_line(name: str, kind: str, tmp_path: Path) -> None:
    """A FIFO would block the run for ever and /dev/zero would fill memory: both are refused unread."""
    argv, prefix, _ = packed_progress(tmp_path)
    path = Path(f"{prefix}.{name}.json")
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind)
    code, text = run_cli(argv)
    assert (code, text) == (1, f"imgprep: error: {path}: not a regular file (a device, FIFO or socket cannot be "
                               "read as data)\n")
