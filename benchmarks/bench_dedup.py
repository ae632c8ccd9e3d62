"""Duplicate search and grouping: time and memory to ImageNet scale, recall per copy kind, precision.

Four parts, each side by side with what it replaced (the numpy multi-index search that listed
every pair, the plain mirror-aware pHash, groups chained through every link), run on one
machine so ratios hold on a shared one:

1. **Scale**: fingerprints at 100k, 400k and 1.33M images, each image with its whole-image hash,
   11 crop-window hashes and (for 15% of them) one alternate orientation, with their check
   hashes, as ``find_groups`` queries them.  ``--bits photo`` draws every bit with the frequency
   it has in real photos' fingerprints (a photo hash's DC and first-harmonic bits are almost
   always set: measured on benchmarks/corpus.py's photos, or on tests/imgfactory.py's when they
   cannot be fetched); ``--bits uniform`` draws well-spread hashes.  Each size runs in a fresh
   process: time, CPU and the **exact** peak memory of the search above its inputs (``VmHWM``
   after ``clear_refs`` resets it), per image, and the crop windows' bands (radius/key bits each).
   ``--baseline DIR`` runs the same child with another checkout's imgprep beside it (ratios); the
   old search runs only up to ``--old-max``.
2. **Degenerate data**: n identical images and n flat images of different colours, old vs new.
3. **Smooth random fields** (tests/fields.py: sums of three sinusoids, 64-96 px): distinct images
   whose hashes crowd together.  Groups, images in groups, the largest group and the distance of
   each member to its representative: stars (new) vs every link chained (old).
4. **Real photos** (benchmarks/corpus.py's Debian wallpaper photos): two overlapping views of
   each photo are the *distinct* set (same scene, different framing: must not be grouped), and
   each view gets one copy of every kind in tests/dupkinds.py.  Recall per kind and false
   groups, old fingerprint vs new.

    python benchmarks/bench_dedup.py --bits photo         # all four, 100k/400k/1.33M
    python benchmarks/bench_dedup.py --sizes 100000,400000,1330000 --old-max 0 --fields 0 --skip-degenerate \
        --skip-photos --baseline /path/to/checkout-before   # the search at scale beside an earlier one
    python benchmarks/bench_dedup.py --sizes 20000 --fields 1000 --photos 10 --old-max 0   # a tiny check
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from imgprep.splits import dedup, neardup  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


# --- the search this replaced (imgprep 0.1: every pair listed, then grouped) -----------------------


def old_near_pairs(hashes: np.ndarray, mirrors: np.ndarray, threshold: int) -> list[tuple[int, int, int]]:
    index = neardup.HashIndex(hashes)
    best: dict[tuple[int, int], int] = {}
    for queries in (hashes, mirrors):
        for q, h, d in index.pairs(queries, threshold):
            keep = q != h
            for i, j, dist in zip(q[keep].tolist(), h[keep].tolist(), d[keep].tolist(), strict=True):
                key = (i, j) if i < j else (j, i)
                if dist < best.get(key, 65):
                    best[key] = dist
    return sorted((i, j, d) for (i, j), d in best.items())


_D = None


def old_phash_pair(luma: np.ndarray) -> tuple[int, int]:
    """The old fingerprint: pHash of the whole stored image and of its mirror."""
    global _D
    if _D is None:
        k = np.arange(32)[:, None]
        m = np.cos(np.pi * (2 * np.arange(32)[None, :] + 1) * k / 64)
        m[0] *= np.sqrt(1 / 32)
        m[1:] *= np.sqrt(2 / 32)
        _D = m[:8]
    from imgprep.imaging.phash import box_resize

    coeffs = _D @ box_resize(luma) @ _D.T
    weights = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)

    def bits(block: np.ndarray) -> int:
        return int(((block.ravel() > np.median(block)).astype(np.uint64) * weights).sum())

    return bits(coeffs), bits(coeffs * np.where(np.arange(8) % 2, -1.0, 1.0)[None, :])


# --- measuring -------------------------------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class Peak:
    """Peak RSS above the level at entry, sampled every 5 ms."""

    def __enter__(self) -> Peak:
        self.base = rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def extra(self) -> int:
        return self.peak - self.base


def _col(typecode: str, values: np.ndarray) -> array:
    out = array(typecode)
    out.frombytes(np.ascontiguousarray(values).tobytes())
    return out


def _hashes(rng: np.random.Generator, k: int, freq: np.ndarray | None) -> np.ndarray:
    """k hashes, each bit set with its frequency in ``freq`` (None: 1/2, well spread)."""
    if freq is None:
        return rng.integers(0, 2**64 - 1, k, dtype=np.uint64, endpoint=True)
    out = np.zeros(k, np.uint64)
    for lo in range(0, k, 1 << 18):
        bits = rng.random((min(k - lo, 1 << 18), 64)) < freq
        out[lo: lo + len(bits)] = (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(1, dtype=np.uint64)
    return out


def random_prints(n: int, seed: int = 0, freq: np.ndarray | None = None) -> dedup.Prints:
    """Fingerprint columns of n photos (one alternate orientation for 15%), hashes drawn bit by bit
    with ``freq`` (None: well spread); check hashes well spread."""
    rng = np.random.default_rng(seed)
    alt = np.flatnonzero(rng.random(n) < 0.15)
    w = dedup.WINDOWS
    return dedup.Prints(
        digest=_col("Q", rng.integers(0, 2**63, n, dtype=np.uint64)),
        hash=_col("Q", _hashes(rng, n, freq)),
        kind=_col("B", np.zeros(n, np.uint8)),
        windows=_col("Q", _hashes(rng, n * w, freq)),
        alt_hash=_col("Q", _hashes(rng, len(alt), freq)),
        alt_row=_col("q", alt.astype(np.int64)),
        check=_col("Q", _hashes(rng, n, None)),
        area=_col("Q", rng.integers(10_000, 200_000, n).astype(np.uint64)),
        window_check=_col("Q", _hashes(rng, n * w, None)),
        alt_check=_col("Q", _hashes(rng, len(alt), None)),
        **({"chroma": _col("I", _chroma_words(rng, n)), "window_chroma": _col("I", _chroma_words(rng, n * w)),
            "alt_chroma": _col("I", _chroma_words(rng, len(alt)))}
           if hasattr(dedup.Prints(), "chroma") else {}),  # a --baseline checkout from before the colour check
        **({"detail": _col("B", np.full(n, 255, np.uint8))} if hasattr(dedup.Prints(), "detail") else
           {"low_detail": _col("B", np.zeros(n, np.uint8))} if hasattr(dedup.Prints(), "low_detail") else {}),
    )


def _chroma_words(rng: np.random.Generator, k: int) -> np.ndarray:
    """Chroma words: random bits per colour channel, a tenth of the images grey (both channels unknown)."""
    words = rng.integers(0, 2**32 - 1, k, dtype=np.uint32)
    words[rng.random(k) < 0.1] = 0xFFFFFFFF  # phash.NO_CHROMA
    return words


def photo_bit_frequencies(count: int = 400) -> tuple[np.ndarray, str]:
    """How often each hash bit is set in real photos' fingerprints (whole images and windows)."""
    try:
        import corpus

        paths = corpus.find_photos(corpus.fetch_photo_packages())[:count]
        blobs = [p.read_bytes() for p in paths]
        source = f"{len(blobs)} Debian wallpaper photos"
    except Exception as exc:  # noqa: BLE001 - offline: the synthetic photos stand in, and say so
        import imgfactory

        blobs = [imgfactory.jpeg(320, 240, seed=s) for s in range(count)]
        source = f"{count} tests/imgfactory.py photos (real photos unavailable: {exc})"
    hashes = []
    for blob in blobs:
        fp = dedup.measure(blob).print
        if fp is not None and not fp.flat:
            hashes += [fp.hash, *fp.windows]
    h = np.array(hashes, np.uint64)
    return ((h[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).mean(0), source


def _vm(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def scale_child(n: int, workers: int, threshold: int, freq: list[float] | None) -> dict[str, float]:
    """One size in this (fresh) process: the search's exact peak above its inputs."""
    import ctypes
    import gc

    prints = random_prints(n, freq=None if freq is None else np.array(freq))
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)  # pages freed while drawing the inputs go back: the baseline is the inputs
    base = _vm("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
        fh.write("5")
    t0, c0 = time.perf_counter(), time.process_time()
    groups = dedup.find_groups(prints, threshold, workers=workers)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "peak": _vm("VmHWM") - base,
            "groups": len(groups.members())}


def _child(n: int, workers: int, threshold: int, freq: np.ndarray | None, pythonpath: str | None = None) -> dict:
    arg = json.dumps({"n": n, "workers": workers, "threshold": threshold,
                      "freq": None if freq is None else freq.tolist()})
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    out = subprocess.run([sys.executable, __file__, "--child", arg], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _growth(n: int, cpu: float, last: tuple[int, float] | None) -> str:
    return "" if last is None else f"n^{np.log(cpu / last[1]) / np.log(n / last[0]):.2f}"


def _per_image(cpu: float, n: int) -> str:
    """CPU time per image: flat when the search grows linearly."""
    return f"{1e6 * cpu / n:.2f} µs"


def _overall(name: str, runs: list[tuple[int, float, float]]) -> str:
    """The growth exponent from the first size to the last, in CPU and wall time, and how the CPU
    time per image changed: one line per search (the new one, the baseline)."""
    (n0, c0, w0), (n1, c1, w1) = runs[0], runs[-1]
    span = np.log(n1 / n0)
    return (f"{name}: {n0:,} -> {n1:,} images: CPU n^{np.log(c1 / c0) / span:.2f}, wall n^{np.log(w1 / w0) / span:.2f};"
            f" CPU per image {_per_image(c0, n0)} -> {_per_image(c1, n1)} (x{(c1 / n1) / (c0 / n0):.2f})")


def _bands(freq: np.ndarray | None, n: int, threshold: int) -> str:
    """The crop windows' layout at this size: radius/key bits per band."""
    plan = neardup.layout(freq, n, neardup.window_threshold(threshold), dedup.WINDOWS * n)
    return " ".join(f"{r}/{k}" for _, _, k, r in plan.bands.tolist())


def scale(sizes: list[int], old_max: int, workers: int, threshold: int, bits: str, baseline: str | None) -> None:
    freq, source = photo_bit_frequencies() if bits == "photo" else (None, "")
    what = f"bits drawn with real photos' frequencies ({source})" if freq is not None else "well-spread random hashes"
    print(f"\n## Search at scale ({what}; threshold {threshold}, crop windows {neardup.window_threshold(threshold)},"
          f" checks {neardup.CHECK_THRESHOLD}; the old search: threshold {threshold}, hash and mirror)\n")
    if freq is not None:
        print("bit frequencies, by band (bits 0-15, 16-31, 32-47, 48-63): "
              + "; ".join(" ".join(f"{f:.2f}" for f in freq[b * 16:(b + 1) * 16]) for b in range(4)) + "\n")
    base_head = base_rule = ""
    if baseline:
        print(f"baseline: the same child run with PYTHONPATH={baseline} (e.g. a checkout of the commit before)\n")
        base_head = ("base: wall | base: CPU | base: CPU per image | base: peak per image | base: growth | "
                     "CPU new/base | ")
        base_rule = "---:|---:|---:|---:|---:|---:|"
    print("| images | new: wall | new: CPU | new: CPU per image | new: exact peak above inputs | per image "
          "| growth (CPU) | window bands "
          f"(radius/key) | {base_head}old: wall | old: CPU | old: peak | old pairs |")
    print(f"|---:|---:|---:|---:|---:|---:|---:|---|{base_rule}---:|---:|---:|---:|")
    last = last_base = None
    runs: dict[str, list[tuple[int, float, float]]] = {"new": [], "base": []}
    for n in sizes:
        new = _child(n, workers, threshold, freq)
        runs["new"].append((n, new["cpu"], new["seconds"]))
        growth = _growth(n, new["cpu"], last)
        last = (n, new["cpu"])
        base_cells = ""
        if baseline:
            base = _child(n, workers, threshold, freq, baseline)
            runs["base"].append((n, base["cpu"], base["seconds"]))
            base_cells = (f"{base['seconds']:.1f} s | {base['cpu']:.1f} s | {_per_image(base['cpu'], n)} | "
                          f"{base['peak'] / n:.0f} B | "
                          f"{_growth(n, base['cpu'], last_base)} | {new['cpu'] / base['cpu']:.2f} | ")
            last_base = (n, base["cpu"])
        old_cells = "not run (quadratic: minutes to hours) | | | "
        if n <= old_max:
            prints = random_prints(n, freq=freq)
            mirrors = np.random.default_rng(1).integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
            with Peak() as old:
                pairs = old_near_pairs(prints.column("hash"), mirrors, threshold)
            old_cells = f"{old.seconds:.1f} s | {old.cpu:.1f} s | {old.extra / 2**20:.0f} MiB | {len(pairs):,}"
            del prints
        print(f"| {n:,} | {new['seconds']:.1f} s | {new['cpu']:.1f} s | {_per_image(new['cpu'], n)} | "
              f"{new['peak'] / 2**20:.0f} MiB | "
              f"{new['peak'] / n:.0f} B | {growth} | {_bands(freq, n, threshold)} | {base_cells}{old_cells} |",
              flush=True)
    if len(sizes) > 1:
        print()
        for name, points in runs.items():
            if points:
                print(_overall("new" if name == "new" else f"base ({baseline})", points))


def degenerate(workers: int) -> None:
    print("\n## Identical and flat images\n")
    print("| data | new: time | new: groups | old: time | old: pairs |")
    print("|---|---:|---:|---:|---:|")
    import imgfactory

    photo = dedup.measure(imgfactory.jpeg(96, 72, seed=5))
    for n in (2000, 5000, 100_000):
        prints = dedup.Prints()
        for _ in range(n):
            prints.add(photo)
        with Peak() as new:
            groups = dedup.find_groups(prints, workers=workers)
        old = "not run"
        if n <= 2000:
            hashes = np.full(n, photo.print.hash, np.uint64)
            t0 = time.perf_counter()
            pairs = old_near_pairs(hashes, hashes, 10)
            old = f"{time.perf_counter() - t0:.1f} s | {len(pairs):,}"
        print(f"| {n:,} identical photos | {new.seconds:.2f} s | {len(groups.members())} | {old} |")
    rng = np.random.default_rng(0)
    for n in (2000, 20_000):
        prints = dedup.Prints()
        for i in range(n):
            grey = np.full((48, 64), rng.integers(0, 256), np.uint8)
            grey[0, 0] = i % 251
            grey[0, 1] = i // 251
            prints.add(dedup.measure(grey))
        with Peak() as new:
            groups = dedup.find_groups(prints, workers=workers)
        old = "not run"
        if n <= 2000:
            lumas = [np.full((48, 64), v, np.uint8) for v in rng.integers(0, 256, n)]
            hashes = np.array([old_phash_pair(x)[0] for x in lumas], np.uint64)
            t0 = time.perf_counter()
            pairs = old_near_pairs(hashes, hashes, 10)
            old = f"{time.perf_counter() - t0:.1f} s | {len(pairs):,}"
        print(f"| {n:,} flat images, all colours | {new.seconds:.2f} s | {len(groups.members())} "
              f"({groups.count(dedup.FLAT):,} flagged low-information) | {old} |")


def _chained(prints: dedup.Prints, threshold: int, workers: int) -> np.ndarray:
    """The old grouping: every link (hash, other orientation, window at 7 bits; no check) joined
    transitively, by the union-find search; group label per row (rows that are not OK: alone)."""
    kind = prints.column("kind")
    ok = np.flatnonzero(kind == dedup.OK)
    uniq, pos = np.unique(prints.column("hash")[ok], return_inverse=True)
    owner = np.full(len(kind), -1, np.int32)
    owner[ok] = pos
    parent = np.arange(len(uniq), dtype=np.int32)
    ident = np.arange(len(uniq), dtype=np.int32)
    neardup.merge(uniq, uniq, ident, parent, threshold, workers=workers, symmetric=True)
    if len(prints.alt_row):
        neardup.merge(uniq, prints.column("alt_hash"), owner[prints.column("alt_row")], parent, threshold,
                      workers=workers)
    neardup.merge(uniq, prints.column("windows"), owner, parent, min(threshold, 7), workers=workers)
    label = np.arange(len(kind))
    label[ok] = ok[np.unique(neardup.roots(parent)[pos], return_index=True)[1]][
        np.unique(neardup.roots(parent)[pos], return_inverse=True)[1]]
    return label


def _rule_bits(a: object, b: object) -> str:
    """The closest of the comparisons a group's rule makes, as "bits (whole|window)"."""
    from imgprep.imaging.phash import hamming

    best = (64, "")
    for x, y in ((a, b), (b, a)):
        turns = 1 + len(x.alternates)
        for k, h in enumerate((x.hash, *x.alternates, *x.windows)):
            best = min(best, (int(hamming(h, y.hash)), "whole" if k < turns else "window"))
    return f"{best[0]} ({best[1]})"


def smooth_fields(count: int, workers: int, threshold: int) -> None:
    import fields
    from PIL import Image

    from imgprep.imaging.phash import hamming

    print(f"\n## Smooth random fields: {count:,} distinct images (tests/fields.py), threshold {threshold}\n")
    measured = []
    for seed in range(count):
        out = io.BytesIO()
        Image.fromarray(fields.field(seed)).save(out, "JPEG", quality=90)
        measured.append(dedup.measure(out.getvalue()))
    prints = dedup.Prints()
    for m in measured:
        prints.add(m)
    print("| grouping | groups | images in groups | largest group | member to representative: the rule's bits "
          "(max) | whole-hash bits (median / max) | largest group: pairwise whole-hash bits (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    new = dedup.find_groups(prints, threshold, workers=workers).group
    old = _chained(prints, threshold, workers)
    for name, label in (("stars, checked (new)", new), ("every link chained (old)", old)):
        sizes = np.bincount(label, minlength=len(label))
        grouped = np.flatnonzero(sizes[label] > 1)
        hashes = prints.column("hash")
        members = grouped[label[grouped] != grouped]
        to_rep = hamming(hashes[members], hashes[label[members]])
        rule = max((_rule_bits(measured[label[r]].print, measured[r].print) for r in members), default=0)
        big = np.flatnonzero(label == np.argmax(sizes))[:2000]
        pair = hamming(hashes[big][:, None], hashes[big][None, :])[np.triu_indices(len(big), 1)]
        print(f"| {name} | {int((sizes > 1).sum()):,} | {len(grouped):,} | {int(sizes.max()):,} | "
              f"{rule} | {np.median(to_rep) if len(to_rep) else 0:.0f} / {to_rep.max() if len(to_rep) else 0} | "
              f"{np.median(pair) if len(pair) else 0:.0f} |")


def photos(count: int, workers: int, threshold: int, contrast: float = 1.0) -> None:
    import corpus
    import dupkinds
    from PIL import Image, ImageEnhance

    from imgprep.imaging.decode import decode

    sources = corpus.find_photos(corpus.fetch_photo_packages())
    views: list[Image.Image] = []
    names: list[str] = []
    for path in sources:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img.thumbnail((1200, 1200))
            w, h = img.size
            # two views of one scene: the left and right 70% (40% of the frame shared)
            views += [img.crop((0, 0, w * 7 // 10, h)), img.crop((w * 3 // 10, 0, w, h))]
            title = path.parts[-4] if "wallpapers" in path.parts else path.stem
            names += [f"{title} (left)", f"{title} (right)"]
    views = [v.resize((560, round(560 * v.height / v.width)), Image.Resampling.LANCZOS) for v in views][:count]
    if contrast != 1.0:  # dim, flat photos: a caption or a crop moves their hash the most
        views = [ImageEnhance.Contrast(v).enhance(contrast) for v in views]
    data: list[bytes] = []
    owner: list[int] = []  # which view an image shows (-1: it is the view)
    kind: list[str] = []
    for i, view in enumerate(views):
        base = dupkinds.original(view)
        data.append(base)
        owner.append(i)
        kind.append("original")
        for name in dupkinds.KINDS:
            data.append(dupkinds.copy(view, name, base))
            owner.append(i)
            kind.append(name)
    dim = f", contrast x{contrast:g}" if contrast != 1.0 else ""
    print(f"\n## Real photos{dim}: {len(views)} views of {len(views) // 2} Debian wallpaper photos (two overlapping "
          f"views per photo: the distinct set), {len(dupkinds.KINDS)} copies of each; old: imgprep 0.1's plain "
          "pHash and mirror, every pair within 10 bits chained (decoded as today: 16-bit PNGs scaled)\n")
    prints = dedup.Prints()
    old = []
    for blob in data:
        prints.add(dedup.measure(blob))
        luma = decode(blob, min_side=64, keep_luma=True).luma
        old.append(old_phash_pair(luma))
    found = dedup.find_groups(prints, threshold, workers=workers)
    groups = found.group
    owner_a = np.array(owner)
    kind_a = np.array(kind)
    originals = np.flatnonzero(kind_a == "original")
    # old: pairs within 10 bits (hash or mirror), grouped
    old_h = np.array([h for h, _ in old], np.uint64)
    old_m = np.array([m for _, m in old], np.uint64)
    old_pairs = old_near_pairs(old_h, old_m, 10)
    old_groups = np.arange(len(data))
    if old_pairs:
        old_groups = dedup.components(len(data), np.array([a for a, _, _ in old_pairs], np.int64),
                                      np.array([b for _, b, _ in old_pairs], np.int64))
    print("| copy kind | new recall | old recall |")
    print("|---|---:|---:|")
    for name in dupkinds.KINDS:
        rows = np.flatnonzero(kind_a == name)
        new_found = np.mean([groups[r] == groups[originals[owner_a[r]]] for r in rows])
        old_found = np.mean([old_groups[r] == old_groups[originals[owner_a[r]]] for r in rows])
        print(f"| {name} | {new_found:.0%} | {old_found:.0%} |")
    for label, g in (("new", groups), ("old", old_groups)):
        false = [(int(a), int(b)) for i, a in enumerate(originals) for b in originals[i + 1:] if g[a] == g[b]]
        named = "; ".join(f"{names[owner_a[a]]} ~ {names[owner_a[b]]}" for a, b in false)
        print(f"\n{label}: distinct views grouped together: {len(false)} of "
              f"{len(originals) * (len(originals) - 1) // 2} pairs{': ' + named if named else ''}")
    flat = prints.column("kind") == dedup.FLAT
    print(f"low-information flagged: {int(flat.sum())} of {len(data)} real-photo images")
    _, listed = dedup.findings(found, np.zeros(len(data), np.int64), np.zeros(len(data), np.int64))
    alike = [f for f in listed if f.lookalike]
    print(f"groups flagged look-alike (no detail to tell a copy from a similar image): {len(alike)} of "
          f"{len(listed)}{': ' if alike else ''}{'; '.join(sorted({names[owner_a[f.rows[0]]] for f in alike}))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,400000,1330000")
    parser.add_argument("--old-max", type=int, default=400_000, help="largest size the old search runs at")
    parser.add_argument("--photos", type=int, default=74, help="views of real photos (two per photo)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threshold", type=int, default=neardup.DEFAULT_THRESHOLD,
                        help="threshold of the photo recall part (the search at scale runs at --scale-threshold)")
    parser.add_argument("--scale-threshold", type=int, default=neardup.DEFAULT_THRESHOLD,
                        help="threshold of the search at scale (both)")
    parser.add_argument("--quick", action="store_true", help="100k hashes only, 1,000 fields, 20 photo views")
    parser.add_argument("--bits", choices=("photo", "uniform"), default="photo",
                        help="hash bits at scale: with real photos' frequencies, or well spread")
    parser.add_argument("--fields", type=int, default=10_000, help="smooth random fields (0: skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--low-contrast", type=float, default=0.3,
                        help="the photo part again on the photos at this contrast (0: skip)")
    parser.add_argument("--baseline", help="a checkout (PYTHONPATH) whose search runs beside this one at scale")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-degenerate", action="store_true")
    parser.add_argument("--skip-photos", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(scale_child(job["n"], job["workers"], job["threshold"], job["freq"])))
        return 0
    if args.quick:
        args.sizes, args.old_max, args.photos, args.skip_degenerate = "100000", 0, 20, True
        args.fields = min(args.fields, 1000)
    print(f"# bench_dedup: {os.cpu_count()} CPUs, {args.workers} workers (ratios hold; absolute figures drift "
          "on a shared machine)")
    if not args.skip_scale:
        scale([int(s) for s in args.sizes.split(",")], args.old_max, args.workers, args.scale_threshold, args.bits,
              args.baseline)
    if not args.skip_degenerate:
        degenerate(args.workers)
    if args.fields:
        smooth_fields(args.fields, args.workers, args.threshold)
    if not args.skip_photos:
        photos(args.photos, args.workers, args.threshold)
        if args.low_contrast:
            photos(args.photos, args.workers, args.threshold, args.low_contrast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
