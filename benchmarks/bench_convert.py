"""Seed workflows by hand vs. one imgprep command, whole processes, wall-clock.

(a) Fashion-MNIST (seed 003): python-mnist -> one JPEG per image in class folders ->
    ``im2rec.py --list --recursive --train-ratio 0.7 --test-ratio 0.3`` -> ``im2rec.py
    --pass-through`` per list, against ``imgprep prepare mnist --split train=0.7,val=0.3
    --encoding jpg --color 0`` (the same grayscale JPEG records, packed from the arrays).
(b) COCO multi-label (seed 000): the notebook's pycocotools loop (5 categories, list
    membership per image) + shuffle/head split, against ``imgprep convert coco --categories
    ... --split train=0.5,val=0.5`` (validated JSON, iterative stratification).

Synthetic inputs of the real sizes (70,000 28x28 images; 118,287 images / 860,001
annotations / 80 categories with ids 1..90).  im2rec runs under ``.venv-mx/bin/python``
(override with IMGPREP_MXNET_PYTHON).  Usage: ``python benchmarks/bench_convert.py [--quick]
[--only mnist|coco] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
IMGPREP = [sys.executable, "-c", "import sys; from imgprep.cli.main import main; main(sys.argv[1:])"]

BLOG_STEP1 = r"""
import os, sys
import numpy as np
from mnist import MNIST
from PIL import Image
samples, target = sys.argv[1], sys.argv[2]
categories = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
              "ankle_boot"]
for c in categories:
    os.makedirs(os.path.join(target, c), exist_ok=True)
mndata = MNIST(samples, gz=True)
counter = 0
for load in (mndata.load_training, mndata.load_testing):
    images, labels = load()
    for i in range(len(images)):
        img = Image.fromarray(np.array(images[i], dtype=np.uint8).reshape(28, 28))
        img.save("%s/%s/img_%d.jpg" % (target, categories[labels[i]], counter))
        counter += 1
"""

NOTEBOOK_COCO = r"""
import contextlib, io, os, random, sys
import numpy as np
from pycocotools.coco import COCO
annFile, outdir = sys.argv[1], sys.argv[2]
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(annFile)
catIds = coco.getCatIds()
image_ids_of_cats = []
for cat in catIds:
    image_ids_of_cats.append(coco.getImgIds(catIds=[cat]))
image_ids = []
labels = []
cats = [1, 2, 3, 4, 5]
for ind_cat in cats:
    for image_id in image_ids_of_cats[ind_cat - 1]:
        if image_id in image_ids:
            labels[image_ids.index(image_id)][ind_cat - 1] = 1
        else:
            image_ids.append(image_id)
            labels.append(np.zeros(len(cats), dtype=int))
            labels[-1][ind_cat - 1] = 1
lines = []
for ind, image_id in enumerate(image_ids):
    coco_img = coco.loadImgs(image_id)
    lines.append(str(ind) + "\t" + "".join(str(j) + "\t" for j in labels[ind]) + coco_img[0]["file_name"] + "\n")
random.shuffle(lines)  # !shuf image.lst
half = len(lines) // 2
with open(os.path.join(outdir, "train.lst"), "w") as fp:
    fp.writelines(lines[:half])
with open(os.path.join(outdir, "val.lst"), "w") as fp:
    fp.writelines(lines[half:])
"""


def timed(cmd: list[str], **kw: object) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def write_mnist(folder: Path, n_train: int, n_test: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    # smooth blobs rather than noise, so JPEG sizes resemble real Fashion-MNIST
    y, x = np.mgrid[0:28, 0:28]
    for part, n in (("train", n_train), ("t10k", n_test)):
        cx, cy, r = rng.uniform(8, 20, n), rng.uniform(8, 20, n), rng.uniform(4, 10, n)
        d = np.sqrt((x[None] - cx[:, None, None]) ** 2 + (y[None] - cy[:, None, None]) ** 2)
        pixels = np.clip(255 * (1 - d / r[:, None, None]), 0, 255).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = struct.pack(">IIII", 2051, n, 28, 28) + pixels.tobytes()
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images, 6, mtime=0))
        (folder / f"{part}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes(), 6, mtime=0)
        )


def bench_mnist(work: Path, quick: bool) -> tuple[float, float]:
    n_train, n_test = (6000, 1000) if quick else (60000, 10000)
    mx_python = os.environ.get("IMGPREP_MXNET_PYTHON", str(REPO / ".venv-mx" / "bin" / "python"))
    where = "import mxnet, os; print(os.path.join(os.path.dirname(mxnet.__file__), 'tools', 'im2rec.py'))"
    found = subprocess.run([mx_python, "-W", "ignore", "-c", where], capture_output=True, text=True, check=True)
    im2rec = found.stdout.strip().splitlines()[-1]
    samples = work / "samples"
    write_mnist(samples, n_train, n_test)
    blog = work / "blog"
    blog.mkdir()
    t1 = timed([sys.executable, "-c", BLOG_STEP1, str(samples), str(blog / "fashion_mnist")])
    t2 = timed(
        [mx_python, im2rec, "--list", "--recursive", "--train-ratio", "0.7", "--test-ratio", "0.3",
         str(blog / "fashion_mnist"), str(blog / "fashion_mnist")],
    )  # fmt: skip
    t3 = 0.0
    for lst in ("fashion_mnist_train", "fashion_mnist_test"):
        t3 += timed(
            [mx_python, im2rec, "--num-thread", "1", "--pass-through", str(blog / lst), str(blog / "fashion_mnist")]
        )
    hand = t1 + t2 + t3
    print(f"  by hand: python-mnist + {n_train + n_test} JPEG files {t1:.2f} s, im2rec --list {t2:.2f} s, "
          f"im2rec --pass-through {t3:.2f} s = {hand:.2f} s")  # fmt: skip
    tool = timed(
        [*IMGPREP, "prepare", "mnist", str(samples), "-o", str(work / "imgprep"), "--split", "train=0.7,val=0.3",
         "--encoding", "jpg", "--color", "0", "-q"],
        cwd=REPO,
    )  # fmt: skip
    print(f"  imgprep prepare mnist: {tool:.2f} s")
    return hand, tool


def write_coco(path: Path, n_images: int, n_annotations: int) -> None:
    rng = np.random.default_rng(0)
    ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]  # 80 ids in 1..90
    names = ["person", "bicycle", "car", "motorcycle", "airplane"] + [f"category{i}" for i in ids[5:]]
    categories = [{"id": i, "name": n, "supercategory": "thing"} for i, n in zip(ids, names)]
    # train2017-like: person in ~54% of images, a long tail elsewhere
    weights = np.array([0.30, *np.geomspace(0.05, 0.001, 79)])
    weights /= weights.sum()
    img_ids = rng.permutation(np.arange(1, 600000))[:n_images]
    owner = rng.integers(0, n_images, n_annotations)
    cats = rng.choice(len(ids), n_annotations, p=weights)
    crowd = rng.random(n_annotations) < 0.01
    area = rng.uniform(10, 50000, n_annotations).round(1)
    images = [{"id": int(i), "file_name": f"{int(i):012d}.jpg", "width": 640, "height": 480} for i in img_ids]
    id_list, cat_list = img_ids.tolist(), [ids[c] for c in cats.tolist()]
    annotations = [
        {"id": k + 1, "image_id": id_list[o], "category_id": cat_list[k], "iscrowd": int(c), "area": a,
         "bbox": [1.0, 2.0, 30.0, 40.0]}
        for k, (o, c, a) in enumerate(zip(owner.tolist(), crowd.tolist(), area.tolist()))
    ]  # fmt: skip
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def bench_coco(work: Path, quick: bool) -> tuple[float, float]:
    n_images, n_annotations = (11829, 86000) if quick else (118287, 860001)
    path = work / "instances_train2017.json"
    write_coco(path, n_images, n_annotations)
    print(f"  synthetic instances file: {n_images} images, {n_annotations} annotations, "
          f"{path.stat().st_size / 1e6:.0f} MB")  # fmt: skip
    (work / "notebook").mkdir()
    hand = timed([sys.executable, "-c", NOTEBOOK_COCO, str(path), str(work / "notebook")])
    print(f"  notebook (pycocotools + list loop + shuffle split): {hand:.2f} s")
    tool = timed(
        [*IMGPREP, "convert", "coco", str(path), "-o", str(work / "imgprep"), "--categories",
         "person,bicycle,car,motorcycle,airplane", "--split", "train=0.5,val=0.5", "-q"],
        cwd=REPO,
    )  # fmt: skip
    print(f"  imgprep convert coco (validated, iterative stratification): {tool:.2f} s")
    return hand, tool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the real sizes")
    parser.add_argument("--only", choices=["mnist", "coco"])
    parser.add_argument("--workdir", help="keep inputs and outputs here (default: a temporary folder)")
    args = parser.parse_args()
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-convert-"))
    try:
        if args.only in (None, "mnist"):
            print("(a) Fashion-MNIST, 70,000 images" + (" (quick: 7,000)" if args.quick else ""))
            work = base / "mnist"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            hand, tool = bench_mnist(work, args.quick)
            print(f"  ratio: {hand / tool:.1f}x (target >= 10x)")
        if args.only in (None, "coco"):
            print("(b) COCO multi-label, train2017 size" + (" (quick: a tenth)" if args.quick else ""))
            work = base / "coco"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            hand, tool = bench_coco(work, args.quick)
            print(f"  ratio: {hand / tool:.1f}x")
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
