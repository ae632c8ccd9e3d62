"""Real-photo benchmark corpora for imgprep, built once and cached under ``<repo>/.bench/``.

Two corpora, shaped like the ones behind ``measured.md``:

* ``small``: 2,000 JPEGs in 20 class folders, median about 427x363 (0.16 MP, ~34 KB), COCO/Caltech-sized;
* ``large``: 200 JPEGs of 2-12 MP (median about 6.5 MP), phone-sized.

The pixels come from real photographs shipped by Debian wallpaper packages (``apt-get download`` +
``dpkg -x`` into ``.bench/debs``; nothing is installed).  Each output image is a seeded crop of one
photo, optionally mirrored, scaled and re-encoded at a seeded JPEG quality, so the corpus is the same
on every machine with the same packages and Pillow.  If no photo package can be fetched the build
fails: synthetic images compress and decode differently, so ``--synthetic`` exists only for offline
development and its corpora live in separate folders.

Each corpus folder holds ``images/class_NN/*.jpg``, ``<name>.lst`` (``index<TAB>label<TAB>path``,
integer labels, paths relative to ``images/``; im2rec reads it as is) and ``manifest.json``.

    python benchmarks/corpus.py --small --large        # build if needed, print where and stats
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
DEBS_DIR = BENCH_DIR / "debs"
CORPUS_DIR = BENCH_DIR / "corpus"

# Bump when the recipe changes so cached corpora are rebuilt.
RECIPE_VERSION = 5
SEED = 20240611

# Packages with real photographs, and which of their files are photos rather than artwork (the same
# packages also ship renders and illustrations, which compress far better than photos).
PHOTO_PACKAGES = (
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
)
LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Kleiber_by_Lukas_Baubkus",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "greentock_by_Peter_Nerlich",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
)
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
# Fewer distinct photos than this makes crops repeat the same content too often.
MIN_PHOTOS = 12


@dataclass(frozen=True)
class Spec:
    name: str
    count: int
    classes: int
    kind: str  # "small": fixed pixel size drawn around a median; "large": megapixels drawn from a range


SPECS = {
    "small": Spec("small", 2000, 20, "small"),
    "large": Spec("large", 200, 10, "large"),
}


@dataclass
class Corpus:
    name: str
    dir: Path
    root: Path  # folder the .lst paths are relative to (pass as --root / im2rec's root)
    lst: Path
    count: int
    stats: dict = field(default_factory=dict)
    synthetic: bool = False

    def files(self) -> list[Path]:
        return [self.root / line.rstrip("\n").split("\t")[-1] for line in self.lst.open(encoding="utf-8")]


class CorpusError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------
# Source photos


def _apt_download(pkg: str) -> bool:
    # Sandbox user root: downloading as root into a root-owned folder otherwise warns on every file.
    cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg]
    r = subprocess.run(cmd, cwd=DEBS_DIR, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"corpus: apt-get download {pkg} failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
    return r.returncode == 0


def fetch_photo_packages() -> Path:
    """Download and unpack the photo packages (once); returns the unpacked root."""
    extracted = DEBS_DIR / "root"
    DEBS_DIR.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PHOTO_PACKAGES if not list(DEBS_DIR.glob(f"{p}_*.deb"))]
    if (missing and not shutil.which("apt-get")) or not shutil.which("dpkg"):
        raise CorpusError("apt-get/dpkg not found: real photos come from Debian packages (or use --synthetic)")
    failed = [p for p in missing if not _apt_download(p)]
    if failed and os.geteuid() == 0:
        # Fresh containers often have no package lists yet; refresh once and retry.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        failed = [p for p in failed if not _apt_download(p)]
    for p in failed:
        print(f"corpus: warning: package {p} unavailable, continuing without it", file=sys.stderr)
    for deb in sorted(DEBS_DIR.glob("*.deb")):
        stamp = extracted / f".{deb.name}.done"
        if not stamp.exists():
            extracted.mkdir(exist_ok=True)
            subprocess.run(["dpkg", "-x", str(deb), str(extracted)], check=True)
            stamp.touch()
    return extracted


def find_photos(extracted: Path) -> list[Path]:
    photos: list[Path] = []
    bg = extracted / "usr/share/backgrounds"
    photos += [bg / f"{n}.jpg" for n in LOMIRI_PHOTOS if (bg / f"{n}.jpg").exists()]
    photos += sorted((bg / "mate/nature").glob("*.jpg"))
    for theme in PLASMA_PHOTOS:
        imgs = sorted((extracted / f"usr/share/wallpapers/{theme}/contents/images").glob("*.jpg"))
        if imgs:  # the largest rendition of each theme
            photos.append(max(imgs, key=lambda p: p.stat().st_size))
    return photos


def synthetic_sources(n: int = 8) -> list[Path]:
    """Smooth-but-textured 12 MP JPEGs standing in for photos; for offline development only."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    out_dir = BENCH_DIR / "synthetic-src"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out_dir / f"synthetic_{i:02d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        rng = random.Random(SEED + i)
        w, h = 4000, 3000
        img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        d = ImageDraw.Draw(img)
        for _ in range(60):
            x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(50, 900)
            d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
        img = img.filter(ImageFilter.BoxBlur(12))
        noise = np.random.default_rng(SEED + i).integers(-12, 13, (h, w, 3), dtype=np.int16)
        arr = np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        tmp = path.with_suffix(".tmp")
        Image.fromarray(arr).save(tmp, "JPEG", quality=95)
        tmp.rename(path)
    return paths


# ----------------------------------------------------------------------------------------------
# Generation (runs in forked workers; sources are loaded lazily per worker)

_SOURCES: list[Path] = []
_CACHE: dict[tuple[int, bool], object] = {}


def _source(idx: int, small: bool):
    from PIL import Image

    key = (idx, small)
    if key not in _CACHE:
        img = Image.open(_SOURCES[idx]).convert("RGB")
        if small:
            # Small outputs are <= ~1 MP: a 3 MP copy keeps all the detail they can show and makes
            # every crop cheap.
            f = math.sqrt(3e6 / (img.width * img.height))
            if f < 1:
                img = img.resize((round(img.width * f), round(img.height * f)), Image.LANCZOS)
        _CACHE[key] = img
    return _CACHE[key]


def _source_sizes() -> list[tuple[int, int]]:
    from PIL import Image

    out = []
    for p in _SOURCES:
        with Image.open(p) as im:
            out.append(im.size)
    return out


def _plan(spec: Spec, sizes: list[tuple[int, int]]) -> list[dict]:
    """Every image's parameters, drawn in the parent from a seeded RNG (independent of workers)."""
    rng = random.Random(f"{SEED}:{spec.name}")
    n_src = len(sizes)
    # Stratified megapixel draws: uniform over 2..11 MP with an exact 6.5 MP median even for 200 images.
    strata = [(k + rng.random()) / spec.count for k in range(spec.count)]
    rng.shuffle(strata)
    plan = []
    for i in range(spec.count):
        if spec.kind == "small":
            # Log-normal around the target medians, like a COCO/Caltech mix of sizes and aspects.
            w = min(max(round(427 * math.exp(rng.gauss(0, 0.28))), 96), 1024)
            h = min(max(round(363 * math.exp(rng.gauss(0, 0.28))), 96), 1024)
            src = rng.randrange(n_src)
            # These wallpapers are smoother (bokeh) than COCO/Flickr photos: high qualities bring the
            # bytes per pixel (and so entropy-decoding work) close to the ~34 KB median of real sets.
            quality = rng.randint(90, 96)
        else:
            # Phone-shaped: mostly 4:3 landscape/portrait; 2..11 MP uniform gives a 6.5 MP median.
            aspect = rng.choices((4 / 3, 3 / 4, 16 / 9, 9 / 16, 1.0), weights=(55, 25, 10, 5, 5))[0]
            mp = (2.0 + 9.0 * strata[i]) * 1e6
            w = round(math.sqrt(mp * aspect))
            h = round(w / aspect)

            # Only sources big enough that the crop is upscaled by at most 1.2x linear.
            def max_crop(sz, aspect=aspect):
                sw, sh = sz
                cw = min(sw, sh * aspect)
                return cw * cw / aspect

            ok = [k for k in range(n_src) if max_crop(sizes[k]) * 1.44 >= w * h]
            src = rng.choice(ok) if ok else max(range(n_src), key=lambda k: max_crop(sizes[k]))
            quality = rng.randint(90, 96)
        plan.append(
            {
                "i": i,
                "src": src,
                "w": w,
                "h": h,
                "quality": quality,
                "label": i % spec.classes,
                "u": rng.random(),  # crop scale
                "x": rng.random(),  # crop position
                "y": rng.random(),
                "flip": rng.random() < 0.5,
                "kind": spec.kind,
                "name": spec.name,
            }
        )
    return plan


def _make_one(args: tuple[dict, str]) -> tuple[int, str, int, int, int]:
    from PIL import Image

    p, images_dir = args
    small = p["kind"] == "small"
    src = _source(p["src"], small)
    w, h = p["w"], p["h"]
    aspect = w / h
    sw, sh = src.size
    cw_max = min(sw, sh * aspect)
    # Crop between the largest that fits and (for small) a third of it, never below the output size
    # where avoidable, so downscaling dominates as in real data.
    u_min = min(1.0, max(w / cw_max, 0.5 if small else 0.7))
    cw = cw_max * (u_min + (1 - u_min) * p["u"])
    ch = min(cw / aspect, sh)  # float rounding must not push the box outside the source
    x0 = max(0.0, (sw - cw) * p["x"])
    y0 = max(0.0, (sh - ch) * p["y"])
    box = (x0, y0, x0 + cw, y0 + ch)
    if small:
        out = src.resize((w, h), Image.LANCZOS, box=box, reducing_gap=3.0)
    else:
        out = src.resize((w, h), Image.BICUBIC, box=box)
    if p["flip"]:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    rel = f"class_{p['label']:02d}/{p['name']}_{p['i']:05d}.jpg"
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=p["quality"], subsampling="4:2:0")
    (Path(images_dir) / rel).write_bytes(buf.getvalue())
    return p["i"], rel, w, h, buf.tell()


def _init_worker(sources: list[Path]) -> None:
    global _SOURCES
    _SOURCES = sources


# ----------------------------------------------------------------------------------------------


def _stats(rows: list[tuple[int, str, int, int, int]]) -> dict:
    mps = [w * h / 1e6 for _, _, w, h, _ in rows]
    kbs = [n / 1024 for *_, n in rows]
    return {
        "count": len(rows),
        "median_width": statistics.median(w for _, _, w, _, _ in rows),
        "median_height": statistics.median(h for _, _, _, h, _ in rows),
        "median_mp": round(statistics.median(mps), 3),
        "min_mp": round(min(mps), 3),
        "max_mp": round(max(mps), 3),
        "median_kb": round(statistics.median(kbs), 1),
        "total_mb": round(sum(kbs) / 1024, 1),
    }


def _corpus_key(spec: Spec, synthetic: bool, photos: list[str]) -> dict:
    import PIL

    return {
        "recipe": RECIPE_VERSION,
        "seed": SEED,
        "spec": spec.__dict__,
        "synthetic": synthetic,
        "photos": photos,
        "pillow": PIL.__version__,
    }


def _load_cached(cdir: Path, name: str, synthetic: bool) -> Corpus | None:
    mf = cdir / "manifest.json"
    if not mf.exists():
        return None
    m = json.loads(mf.read_text())
    if m.get("key", {}).get("recipe") != RECIPE_VERSION or m["key"].get("seed") != SEED:
        return None
    lst = cdir / f"{name}.lst"
    if not lst.exists() or m["stats"]["count"] != SPECS[name].count:
        return None
    return Corpus(name, cdir, cdir / "images", lst, m["stats"]["count"], m["stats"], synthetic)


def get_corpus(name: str, *, synthetic: bool = False, rebuild: bool = False, verbose: bool = True) -> Corpus:
    """Return corpus ``name`` ("small" or "large"), building it on first use."""
    spec = SPECS[name]
    cdir = CORPUS_DIR / (f"{name}-synthetic" if synthetic else name)
    if not rebuild:
        cached = _load_cached(cdir, name, synthetic)
        if cached is not None:
            return cached

    t0 = time.perf_counter()
    if synthetic:
        sources = synthetic_sources()
    else:
        sources = find_photos(fetch_photo_packages())
        if len(sources) < MIN_PHOTOS:
            raise CorpusError(
                f"only {len(sources)} photos found in {PHOTO_PACKAGES} (need {MIN_PHOTOS}); "
                "check apt sources / network, or pass --synthetic for offline development"
            )
    _init_worker(sources)
    plan = _plan(spec, _source_sizes())

    if cdir.exists():
        shutil.rmtree(cdir)
    images = cdir / "images"
    for c in range(spec.classes):
        (images / f"class_{c:02d}").mkdir(parents=True)
    # Group by source so each worker decodes each photo once; fork shares nothing decoded yet.
    jobs = sorted(plan, key=lambda p: (p["src"], p["i"]))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(os.cpu_count() or 1, initializer=_init_worker, initargs=(sources,)) as pool:
        rows = pool.map(_make_one, [(p, str(images)) for p in jobs], chunksize=8)
    rows.sort()

    lst = cdir / f"{name}.lst"
    with lst.open("w", encoding="utf-8") as f:
        for (i, rel, *_), p in zip(rows, plan):
            f.write(f"{i}\t{p['label']}\t{rel}\n")
    stats = _stats(rows)
    stats["build_s"] = round(time.perf_counter() - t0, 1)
    stats["source_photos"] = len(sources)
    key = _corpus_key(spec, synthetic, [s.name for s in sources])
    (cdir / "manifest.json").write_text(json.dumps({"key": key, "stats": stats}, indent=1))
    if verbose:
        print(f"corpus: built {name}{' (synthetic)' if synthetic else ''} in {stats['build_s']} s", file=sys.stderr)
    return Corpus(name, cdir, images, lst, len(rows), stats, synthetic)


def describe(c: Corpus) -> str:
    s = c.stats
    return (
        f"{c.name}{' (SYNTHETIC)' if c.synthetic else ''}: {s['count']} images in {c.root}\n"
        f"  list {c.lst}\n"
        f"  median {s['median_width']:.0f}x{s['median_height']:.0f} px, {s['median_mp']} MP "
        f"(range {s['min_mp']}-{s['max_mp']} MP), median {s['median_kb']} KB, total {s['total_mb']} MB, "
        f"from {s.get('source_photos', '?')} source photos"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build (once) and describe the imgprep benchmark corpora.")
    ap.add_argument("--small", action="store_true", help="2,000 COCO-sized JPEGs in 20 classes")
    ap.add_argument("--large", action="store_true", help="200 phone-sized JPEGs (2-12 MP)")
    ap.add_argument("--synthetic", action="store_true", help="generated images, for offline development only")
    ap.add_argument("--rebuild", action="store_true", help="ignore the cache under .bench/")
    a = ap.parse_args(argv)
    names = [n for n in ("small", "large") if getattr(a, n)] or ["small", "large"]
    try:
        for n in names:
            print(describe(get_corpus(n, synthetic=a.synthetic, rebuild=a.rebuild)), flush=True)
    except CorpusError as e:
        print(f"corpus: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
