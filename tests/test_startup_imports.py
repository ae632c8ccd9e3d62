"""A local run loads only what it uses: no S3 store or client, no progress-bar library without a
bar, no process pool for threads, nothing of the Python API a command does not call.

Each command runs in a fresh interpreter (the CLI's own entry function) that writes the names in
``sys.modules`` when the command returns; what a short run imports is most of its wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest

RUNNER = (
    "import json, sys\n"
    "from imgprep.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[2:])\n"
    "finally:\n"
    "    open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))\n"
)

# The S3 store's modules and the clients they load, made on the first s3:// location only.
S3 = {"boto3", "botocore", "obstore", "imgprep.storage.s3", "imgprep.storage.s3_multipart",
      "imgprep.storage.s3_source", "imgprep.storage.s3_cleanup"}
# tqdm only for a bar someone sees (it also loads multiprocessing); socket: the lock names its
# host without it.
QUIET = {"tqdm", "multiprocessing", "socket"}


def loaded(tmp_path: Path, *args: object) -> set[str]:
    """Modules (and their top-level packages) loaded by ``imgprep ARGS`` on the native path (the
    Pillow path loads PIL, as it must), which must succeed."""
    names = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(names), *map(str, args)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, env={**os.environ, "IMGPREP_NATIVE": "1"})
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(names.read_text())
    return set(modules) | {name.partition(".")[0] for name in modules}


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """Three small JPEGs and their list."""
    root = tmp_path / "img"
    root.mkdir()
    for i in range(3):
        imgfactory.write(root / f"{i}.jpg", imgfactory.jpeg(64, 48, quality=90, seed=i))
    (tmp_path / "few.lst").write_text("".join(f"{i}\t{i % 2}\t{i}.jpg\n" for i in range(3)), encoding="utf-8")
    return tmp_path / "few.lst", root


def test_a_local_pass_through_pack_loads_no_s3_store_bar_or_image_library(images, tmp_path: Path) -> None:
    lst, root = images
    modules = loaded(tmp_path, "pack", lst, "--root", root, "-o", tmp_path / "out", "-j", "2",
                     "--executor", "thread", "--quiet", "--pass-through")
    assert (tmp_path / "out.rec").stat().st_size > 0
    assert modules & (S3 | QUIET | {"numpy", "PIL"}) == set()


def test_a_local_pack_that_resizes_loads_no_s3_store_or_bar(images, tmp_path: Path) -> None:
    lst, root = images
    modules = loaded(tmp_path, "pack", lst, "--root", root, "-o", tmp_path / "out", "-j", "2",
                     "--executor", "thread", "--quiet", "--resize", "32")
    assert "imgprep.packing.packer" in modules  # the command ran where it is measured
    assert modules & (S3 | QUIET) == set()


def test_a_local_verify_loads_no_s3_store_bar_or_api(images, tmp_path: Path) -> None:
    lst, root = images
    loaded(tmp_path, "pack", lst, "--root", root, "-o", tmp_path / "out", "--quiet", "--pass-through")
    modules = loaded(tmp_path, "verify", tmp_path / "out", "--against", lst)
    assert "imgprep.verify.run" in modules
    assert modules & (S3 | QUIET | {"imgprep.api", "imgprep.convert"}) == set()
