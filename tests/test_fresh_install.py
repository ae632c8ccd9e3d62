"""What a user gets from ``make wheel``: a fresh virtualenv, the wheel and its requirements only.

The wheel carries libturbojpeg (auditwheel put it in ``imgprep.libs/``); the extension must load
that copy, not the system's, and every README workflow must run from this install alone: JPEG and
PNG folders, an ``s3://`` output, and the COCO, Caltech, MNIST and folder converters.  ``make test``
builds the wheel and names its folder in ``IMGPREP_WHEEL_DIR``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imgfactory
import pytest
from conftest import reader_unavailable
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture
from test_convert_cli import mnist_files

pytestmark = pytest.mark.slow


def _wheel() -> Path:
    folder = os.environ.get("IMGPREP_WHEEL_DIR")
    wheels = sorted(Path(folder).glob("imgprep-*-manylinux*.whl")) if folder else []
    if len(wheels) != 1:
        reader_unavailable(f"no single manylinux wheel in IMGPREP_WHEEL_DIR={folder!r} (run `make wheel`)")
    return wheels[0]


def test_the_wheel_installs_on_manylinux2014_hosts() -> None:
    """glibc 2.17 and newer (Amazon Linux 2 under many SageMaker images has 2.26): a symbol from a newer
    glibc in the native core (fstat64@GLIBC_2.33, say) makes auditwheel tag the wheel manylinux_2_34."""
    assert "manylinux_2_17_x86_64" in _wheel().name


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """``bin/`` of a new virtualenv holding the wheel and what pip resolves for it, nothing else."""
    wheel = _wheel()
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=600,
                          env=_clean_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "IMGPREP_", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"
    env.update(extra)
    return env


def imgprep(bin_dir: Path, *args: object, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(bin_dir / "imgprep"), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=_clean_env(**env), stdin=subprocess.DEVNULL, cwd=bin_dir.parent)
    assert proc.returncode == 0, f"imgprep {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def test_extension_loads_the_bundled_libturbojpeg(fresh: Path) -> None:
    probe = (
        "import imgprep._native as n, json\n"
        "maps = open('/proc/self/maps').read().split('\\n')\n"
        "libs = sorted({l.split()[-1] for l in maps if 'turbojpeg' in l or 'libjpeg' in l})\n"
        "print(json.dumps({'so': n.__file__, 'libs': libs}))\n"
    )
    proc = subprocess.run([str(fresh / "python"), "-c", probe], capture_output=True, text=True,
                          env=_clean_env(), check=True, cwd=fresh.parent)
    found = json.loads(proc.stdout)
    site = Path(found["so"]).parent.parent
    assert site.name == "site-packages", found
    assert len(found["libs"]) == 2, found  # libturbojpeg (the packer) and libjpeg (the reader's crop decode)
    assert all(lib.startswith(str(site / "imgprep.libs")) for lib in found["libs"]), found
    assert "native" in imgprep(fresh, "doctor").stdout


def test_folder_of_jpeg_and_png_packs_on_the_native_path(fresh: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for cls in ("cat", "dog"):
        for i in range(4):
            data = imgfactory.jpeg(96, 64, seed=i) if i % 2 else imgfactory.png(80, 60, seed=i)
            imgfactory.write(root / cls / f"{i}.{'jpg' if i % 2 else 'png'}", data)
    out = tmp_path / "out"
    proc = imgprep(fresh, "prepare", "folders", root, "-o", out, "--split", "train=0.5,val=0.5", "--resize", 32)
    assert "skipped" not in proc.stderr.replace("0 skipped", ""), proc.stderr
    assert "native path" in proc.stdout + proc.stderr
    for split in ("train", "val"):
        assert (out / f"{split}.rec").stat().st_size > 0 and (out / f"{split}.idx").read_text().count("\n") == 4
    # ... and the training reader reads it back through the bundled libjpeg
    read = ("from imgprep.data import Dataset, Loader, Transform\n"
            f"b = next(iter(Loader(Dataset({str(out / 'train')!r}, transform=Transform.train(24)), 4)))\n"
            "print(b.images.shape, sorted(b.labels.tolist()))\n")
    proc = subprocess.run([str(fresh / "python"), "-c", read], capture_output=True, text=True, env=_clean_env(),
                          cwd=fresh.parent, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "(4, 24, 24, 3) [0, 0, 1, 1]", proc.stdout + proc.stderr


def test_pack_to_s3(fresh: Path, tmp_path: Path, seaweed: S3Server) -> None:
    from s3servers import server_env

    root = tmp_path / "photos"
    imgfactory.write(root / "a.jpg", imgfactory.jpeg(64, 48))
    imgfactory.write(root / "b.png", imgfactory.png(64, 48))
    (tmp_path / "x.lst").write_text("0\t0.000000\ta.jpg\n1\t1.000000\tb.png\n")
    seaweed.client().create_bucket(Bucket="fresh")
    imgprep(fresh, "pack", tmp_path / "x.lst", "--root", root, "-o", "s3://fresh/out/x", "--resize", 32,
            AWS_ENDPOINT_URL=seaweed.endpoint_url, **server_env())
    keys = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket="fresh")["Contents"]}
    assert {"out/x.rec", "out/x.idx"} <= keys


def test_every_converter(fresh: Path, tmp_path: Path) -> None:
    folders = tmp_path / "folders"
    caltech = tmp_path / "256_ObjectCategories"
    for i in range(6):
        imgfactory.write(folders / ("ab"[i % 2]) / f"{i}.jpg", imgfactory.jpeg(32, 32, seed=i))
        imgfactory.write(caltech / ("001.ak47", "002.bat")[i % 2] / f"{i}.jpg", imgfactory.jpeg(32, 32, seed=i))
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in range(8)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "iscrowd": 0, "area": 9.0}
                        for i in range(8)],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
    }))
    mnist_files(tmp_path / "mnist")
    runs = {
        "folders": ["convert", "folders", folders, "--split", "train=0.5,val=0.5"],
        "caltech": ["convert", "caltech", caltech, "--train-per-class", 2],
        "coco": ["convert", "coco", coco, "--split", "train=0.5,val=0.5"],
        "mnist": ["prepare", "mnist", tmp_path / "mnist", "--encoding", "png"],
    }
    for name, args in runs.items():
        out = tmp_path / f"out-{name}"
        imgprep(fresh, *args, "-o", out)
        assert (out / "train.lst").read_text().strip(), name
