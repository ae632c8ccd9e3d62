"""Duplicate groups a user can act on: stars around a representative, never chains of strangers;
crops from any side found; PNGs of any depth hashed as pack converts them; the same groups and
totals whichever tool, and whatever order, lists the images."""

from __future__ import annotations

import io
import json
import random
import re

import dupkinds
import fields
import imgfactory
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imgprep.imaging import phash
from imgprep.imaging.phash import hamming
from imgprep.splits import dedup, neardup

FIELDS = 4000  # where the grey fingerprint alone still grouped 40 of them (20 pairs of strangers)


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def _measure_all(blobs: list[bytes]) -> tuple[list[dedup.Measured], dedup.Prints]:
    measured = [dedup.measure(b) for b in blobs]
    prints = dedup.Prints()
    for m in measured:
        prints.add(m)
    return measured, prints


@pytest.fixture(scope="module")
def smooth():
    return _measure_all([_jpeg(fields.field(seed)) for seed in range(FIELDS)])


def test_smooth_fields_make_stars_not_chains(smooth):
    """Distinct smooth colour fields crowd the hash space: linking every near pair transitively
    put most of them into one group.  Each group must be a representative and images that are
    each within the rule of it, and none may be large."""
    measured, prints = smooth
    groups = dedup.find_groups(prints, workers=2)
    members = groups.members()
    sizes = sorted((len(rows) for rows in members.values()), reverse=True)
    assert not sizes or sizes[0] <= 2, sizes[:5]
    # grey-level look-alikes whose check bits agree differ in colour: the chroma words refuse them
    assert sum(sizes) <= 2, sum(sizes)
    for rep, rows in members.items():
        assert rows[0] == rep
        for r in rows[1:]:
            assert dedup.linked(measured[rep].print, measured[r].print), (rep, r)


def test_groups_do_not_depend_on_the_order_images_are_listed_in(smooth):
    measured, _ = smooth
    order = np.random.default_rng(1).permutation(FIELDS)
    shuffled = dedup.Prints()
    for i in order:
        shuffled.add(measured[i])
    original = {frozenset(rows) for rows in dedup.find_groups(smooth[1], workers=2).members().values()}
    again = {frozenset(int(order[r]) for r in rows)
             for rows in dedup.find_groups(shuffled, workers=1).members().values()}
    assert again == original


CROPS = ("grayscale", "saturation x0.5", "cropped 7% from one side", "cropped 10% from one side",
         "cropped 10% from two adjacent sides", "cropped to 80% (10% off every side)", "rotated 180, cropped 5%",
         "mirrored, cropped 8% from one side, q50",
         "16-bit PNG", "palette PNG", "alpha PNG")
PHOTOS = 20


@pytest.fixture(scope="module")
def copies():
    blobs, owner, kind = [], [], []
    for seed in range(PHOTOS):
        img = imgfactory.photo(200, 150, seed=300 + seed)
        base = dupkinds.original(img)
        blobs.append(base)
        owner.append(len(blobs) - 1)
        kind.append("original")
        for name in CROPS:
            blobs.append(dupkinds.copy(img, name, base))
            owner.append(owner[-1] if kind[-1] != "original" else len(blobs) - 2)
            kind.append(name)
    measured, prints = _measure_all(blobs)
    return measured, dedup.find_groups(prints, workers=2), np.array(owner), np.array(kind)


@pytest.mark.parametrize("name", CROPS)
def test_every_copy_kind_is_grouped_with_its_original(copies, name):
    measured, groups, owner, kind = copies
    rows = np.flatnonzero(kind == name)
    assert not any(measured[r].print.flat for r in rows)  # a 16-bit PNG is no blank image
    pure = {rep: len(set(owner[members].tolist())) == 1 for rep, members in groups.members().items()}
    found = (groups.group[rows] == groups.group[owner[rows]]) & np.array([pure.get(int(groups.group[r]), False)
                                                                         for r in rows])  # and nothing else
    assert found.mean() >= 0.85, f"{name}: {int(found.sum())} of {len(rows)}"


def test_distinct_photos_are_never_grouped(copies):
    _, groups, owner, kind = copies
    originals = np.flatnonzero(kind == "original")
    assert len(set(groups.group[originals].tolist())) == len(originals)
    for rows in groups.members().values():
        assert len(set(owner[rows].tolist())) == 1  # every group holds copies of one photo only


def _ycc_jpeg(luma: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> bytes:
    ycc = np.stack([luma, cb, cr], axis=2).astype(np.uint8)
    return _jpeg(np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB")))


def test_images_alike_in_grey_but_not_in_colour_are_not_grouped_and_a_grey_copy_still_is():
    """Two colour fields with the same grey levels (the second's colours the first's opposite hue) are
    strangers to the eye; the grey fingerprint alone linked them.  A grey copy has no colour to
    compare: it is still grouped, with one of them."""
    blobs = []
    for seed in range(12):
        y, cb, cr = np.asarray(Image.fromarray(fields.field(50 + seed)).convert("YCbCr")).transpose(2, 0, 1)
        blobs += [_ycc_jpeg(y, cb, cr), _ycc_jpeg(y, 255 - cb, 255 - cr), _jpeg(y)]
    _, prints = _measure_all(blobs)
    groups = dedup.find_groups(prints, workers=2)
    colour = np.arange(len(blobs)).reshape(-1, 3)
    assert not (groups.group[colour[:, 0]] == groups.group[colour[:, 1]]).any()
    grey = colour[:, 2]
    with_one = (groups.group[grey] == groups.group[colour[:, 0]]) | (groups.group[grey] == groups.group[colour[:, 1]])
    assert with_one.mean() >= 0.9, with_one


def _numbers(text: str) -> tuple[int, ...]:
    head = re.search(r"duplicates: (\d+) group\(s\) holding (\d+) of (\d+) images", text)
    leaks = re.search(r"leaks: (\d+) group\(s\) span splits \((\d+) image", text)
    assert head and leaks, text
    return tuple(int(x) for m in (head, leaks) for x in m.groups())


def test_prepare_and_inspect_count_the_same_totals_with_a_damaged_image(tmp_path, imgprep_cli):
    src = tmp_path / "src"
    for c in ("a", "b"):
        for i in range(6):
            imgfactory.write(src / c / f"{i}.jpg", imgfactory.jpeg(96, 72, seed=i + (10 if c == "b" else 0)))
    imgfactory.write(src / "a" / "bad.jpg", imgfactory.truncated_jpeg(96, 72, seed=99))
    imgfactory.write(src / "b" / "copy.jpg", (src / "a" / "1.jpg").read_bytes())
    prepared = imgprep_cli("prepare", "folders", src, "-o", tmp_path / "out", "--split", "train=0.5,val=0.5").stdout
    inspected = imgprep_cli("inspect", tmp_path / "out").stdout
    assert "could not be read" in prepared
    assert _numbers(prepared) == _numbers(inspected)
    assert _numbers(inspected)[2] == 13


def test_inspect_of_a_same_split_resized_output_finds_no_leak(tmp_path, imgprep_cli):
    """Overlapping crops of photos, packed at 128 px: prepare fingerprints what pack stores, so the
    packed output's groups are prepare's groups, member for member, and same-split leaves no leak."""
    src = tmp_path / "src"
    pick = random.Random(5)
    for ci, c in enumerate(("a", "b", "c")):
        for i in range(30):
            img = imgfactory.photo(400, 300, seed=ci * 1000 + i)
            imgfactory.write(src / c / f"{i:03d}.jpg", imgfactory.encode(img, "JPEG", quality=90))
            for k in range(2):  # 80-95% of each side, anywhere: many land near the threshold
                fw, fh = pick.uniform(0.8, 0.95), pick.uniform(0.8, 0.95)
                x0, y0 = pick.uniform(0, 1 - fw) * 400, pick.uniform(0, 1 - fh) * 300
                crop = img.crop((round(x0), round(y0), round(x0 + fw * 400), round(y0 + fh * 300)))
                imgfactory.write(src / c / f"{i:03d}_{k}.jpg", imgfactory.encode(crop, "JPEG", quality=85))
    out = tmp_path / "out"
    prepared = imgprep_cli("prepare", "folders", src, "-o", out, "--split", "train=0.5,val=0.5", "--dedup",
                           "same-split", "--resize", "128", "--dedup-report", tmp_path / "before.jsonl").stdout
    inspected = imgprep_cli("inspect", out, "--dedup-report", tmp_path / "after.jsonl").stdout
    assert _numbers(inspected)[3:] == (0, 0)
    assert _numbers(prepared) == _numbers(inspected)

    def groups(path):
        return {frozenset(i["id"] for i in json.loads(line)["images"]) for line in path.read_text().splitlines()}

    assert groups(tmp_path / "before.jsonl") == groups(tmp_path / "after.jsonl")


@pytest.mark.parametrize("path", ["native", "numpy"])
def test_lead_search_equals_brute_force_with_photo_like_bits(path, monkeypatch):
    """The star search (with the band-balancing bit permutation on the native path) finds, for every
    hash, the best rank it is confirmed near: the same as comparing every pair."""
    if path == "numpy":
        monkeypatch.setenv("IMGPREP_NATIVE", "0")
    rng = np.random.default_rng(7)
    freq = np.full(64, 0.5)
    freq[[63, 62, 55]] = 0.99  # a photo hash's DC and first harmonics: almost always set

    def hashes(k):
        bits = rng.random((k, 64)) < freq
        return (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(1, dtype=np.uint64)

    index = hashes(3000)
    for k in range(400):  # planted neighbours 0..12 bits away
        index[1500 + k] = index[k] ^ np.uint64(sum(1 << int(b) for b in rng.choice(64, k % 13, replace=False)))
    index = np.unique(index)
    n = len(index)
    icheck = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    icheck[rng.random(n) < 0.5] = 0  # half share a check (confirmable), half are random (refused)
    rank = rng.permutation(n).astype(np.int32)
    windows = index[rng.integers(0, n, 2 * 700)] ^ np.uint64(0b111 << 30)  # 2 per row, 3 bits off
    wcheck = np.zeros(len(windows), np.uint64)
    owner = rng.integers(-1, n, 700).astype(np.int32)
    tables = neardup.balance(index)
    leads = rank.copy()
    neardup.lead(index, icheck, rank, index, icheck, None, leads, 8, 14, workers=2,
                 symmetric=True, tables=tables)
    neardup.lead(index, icheck, rank, windows, wcheck, owner, leads, 10, 14, workers=2, tables=tables)
    expected = rank.copy()
    near = (hamming(index[:, None], index[None, :]) <= 8) & (hamming(icheck[:, None], icheck[None, :]) <= 14)
    np.fill_diagonal(near, False)
    for i in range(n):
        if near[i].any():
            expected[i] = min(expected[i], rank[near[i]].min())
    for k, w in enumerate(windows):
        a = owner[k // 2]
        if a < 0:
            continue
        hit = np.flatnonzero((hamming(w, index) <= 10) & (hamming(wcheck[k], icheck) <= 14))
        for j in hit[hit != a]:
            expected[a] = min(expected[a], rank[j])
            expected[j] = min(expected[j], rank[a])
    assert (expected != rank).sum() > 100
    assert np.array_equal(leads, expected)


def _image(seed: int, h: int, w: int, kind: str, levels: int, pad: int) -> np.ndarray:
    """Grey images with the structures that put coefficients on a tie: few grey levels, mirror
    symmetry (odd frequencies exactly zero), blocks, gradients, bars around the content."""
    rng = np.random.default_rng(seed)
    if kind == "noise":
        img = rng.integers(0, 256, (h, w))
    elif kind == "mirrored":
        half = rng.integers(0, 256, (h, (w + 1) // 2))
        img = np.concatenate([half, half[:, ::-1]], axis=1)[:, :w]
    elif kind == "blocks":
        img = np.kron(rng.integers(0, 256, (h // 8 + 1, w // 8 + 1)), np.ones((8, 8)))[:h, :w]
    else:  # a gradient with a little noise
        y, x = np.mgrid[0:h, 0:w]
        img = (x * rng.uniform(-3, 3) + y * rng.uniform(-3, 3)) % 256 + rng.integers(0, 3, (h, w))
    img = (img // (256 // levels)) * (256 // levels)
    return np.pad(img, pad, constant_values=int(rng.integers(0, 256))).astype(np.uint8)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 120), w=st.integers(1, 120),
       kind=st.sampled_from(["noise", "mirrored", "blocks", "gradient"]), levels=st.sampled_from([2, 3, 16, 256]),
       pad=st.integers(0, 20), turn=st.integers(0, 7),
       colour=st.sampled_from(["noise", "mirrored", "blocks", "gradient"]), faint=st.sampled_from([0, 40, 100]))
def test_native_fingerprint_is_the_numpy_fingerprint_bit_for_bit(seed, h, w, kind, levels, pad, turn, colour, faint):
    """One native call per image computes what the numpy fallback computes, to the bit: the box,
    the clipping, the windows, the blocks, the medians, the orientation and the alternates, and the
    chroma words of every box and alternate."""
    from imgprep.imaging import native, phash

    assert native.available()
    def turned(img):
        return np.ascontiguousarray(np.rot90(img.T if turn & 4 else img, turn & 3))

    luma = turned(_image(seed, h, w, kind, levels, pad))
    assert phash.fingerprint(luma) == phash._numpy_print(luma)
    # and in colour: each chroma plane its own tie-prone image (a flat or near-neutral one reads unknown)
    chroma = np.stack([turned(_image(seed + k, h, w, colour, levels, pad) // (1 + k * faint) + 128 * (k * faint > 0))
                       for k in (1, 2)]).astype(np.uint8)[:, ::2, ::2]  # the planes at half resolution
    found = phash.fingerprint(luma, chroma)
    assert found == phash._numpy_print(luma, chroma)
    assert found.flat or len(found.chromas) == len(found.checks)
    # the detail share (a double, compared above with the rest) to the last bit, not merely close
    assert found.detail.hex() == phash._numpy_print(luma, chroma).detail.hex()
    assert found.flat or -1e-6 < found.detail <= 1


def test_the_detail_share_of_smooth_fields_is_the_same_bit_for_bit_native_and_numpy():
    """Smooth fields put almost all their energy in the hashed block: the share is a small difference
    of two large sums, where any other order of addition would move its last bits."""
    from imgprep.imaging import native, phash

    assert native.available()
    for seed in range(40):
        rgb = fields.field(seed)
        luma = np.ascontiguousarray(rgb.mean(axis=2).astype(np.uint8))
        chroma = dedup._chroma_of(rgb)
        native, numpy = phash.fingerprint(luma, chroma), phash._numpy_print(luma, chroma)
        assert native.detail.hex() == numpy.detail.hex() and native == numpy, seed


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_the_native_decode_gives_the_jpeg_s_chroma_at_half_resolution(subsampling):
    """What the fingerprint's colour check reads: the Cb and Cr planes under every other luma pixel,
    whatever the JPEG's subsampling, as Pillow decodes them (up to its smoother upsampling)."""
    from imgprep.imaging.decode import _pillow, decode

    rgb = fields.field(7)[:75, :67]  # odd sides: the last half-resolution sample covers one pixel
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=95, subsampling=subsampling)
    native = decode(out.getvalue(), min_side=64, keep_luma=True)
    pillow = _pillow(out.getvalue(), 64, True)
    assert native.chroma.shape == pillow.chroma.shape == (2, 38, 34)
    assert np.abs(native.chroma.astype(int) - pillow.chroma).max() <= (1 if subsampling == 0 else 6)
    grey = io.BytesIO()
    Image.fromarray(rgb).convert("L").save(grey, "JPEG")
    assert decode(grey.getvalue(), min_side=64, keep_luma=True).chroma is None


# --- look-alike groups: too little detail to tell a copy from a similar image -----------------------


def _field_copy(seed: int) -> bytes:
    """A field made smaller and re-encoded: a real copy, of an image with no detail beyond the thumbnail."""
    img = Image.fromarray(fields.field(seed))
    return _jpeg(np.asarray(img.resize((img.width * 9 // 10, img.height * 9 // 10))))


def test_a_group_is_look_alike_when_any_of_its_images_is_low_detail_not_only_its_representative() -> None:
    """A member without detail beyond the thumbnail makes its link to the representative proof of
    nothing, whatever the representative's own share (chance pairs of fields straddle the line)."""
    n = 6
    group = np.array([0, 0, 0, 3, 3, 5])
    low = np.array([False, False, True, False, False, True])
    groups = dedup.Groups(group, np.full(n, dedup.OK, np.uint8), np.zeros(n, bool), 0, low)
    summary, found = dedup.findings(groups, np.zeros(n, np.int64), np.zeros(n, np.int64))
    assert [(f.rows[0], f.lookalike) for f in found] == [(0, True), (3, False)]
    assert summary.lookalike_groups == 1 and summary.lookalike_images == 3
    levels = np.array([phash.detail_level(s) for s in (0.0, phash.LOW_DETAIL - 1e-4, phash.LOW_DETAIL, 0.9)])
    assert dedup.low_detail(levels).tolist() == [True, True, False, False] and levels[-1] == phash.NO_DETAIL_LEVEL


def test_groups_of_smooth_fields_are_look_alike_and_a_photo_s_copies_are_not(smooth, copies):
    """Smooth fields look alike at 32 x 32 in grey, colour and amplitudes: a group of them (a chance
    pair or a planted copy) cannot be told from look-alikes and says so; a photo's copies can."""
    fields_measured, _ = smooth
    photos_measured, _, _, _ = copies
    planted = [dedup.measure(_field_copy(seed)) for seed in range(8)]
    prints = dedup.Prints()
    measured_all = [*fields_measured, *planted, *photos_measured]
    for m in measured_all:
        prints.add(m)
    groups = dedup.find_groups(prints, workers=2)
    n_fields = FIELDS + len(planted)
    summary, found = dedup.findings(groups, np.zeros(len(prints), np.int64), np.zeros(len(prints), np.int64))
    field_groups = [f for f in found if f.rows[0] < n_fields]
    photo_groups = [f for f in found if f.rows[0] >= n_fields]
    assert sum(set(f.rows) >= {seed, FIELDS + seed} for f in field_groups for seed in range(8)) >= 6
    strangers = [f for f in field_groups if max(f.rows) < FIELDS]  # chance groups: no planted copy in them
    assert all(f.lookalike for f in strangers)
    # a group is flagged when any of its images is low-detail: most fields have no detail to tell
    assert all(f.lookalike == any(measured_all[r].print.low_detail for r in f.rows) for f in field_groups)
    assert sum(f.lookalike for f in field_groups) >= len(field_groups) - 2
    assert len(photo_groups) >= PHOTOS - 1 and not any(f.lookalike for f in photo_groups)
    assert all(min(f.rows) >= n_fields for f in photo_groups)  # no photo with a field
    flagged = [f for f in field_groups if f.lookalike]
    assert summary.lookalike_groups == len(flagged) and summary.lookalike_images == sum(len(f.rows) for f in flagged)
    assert f"{len(flagged):,} of them look-alike group(s) holding {summary.lookalike_images:,} images" in (
        summary.lines()[0])
    # a copy of a photo keeps a photo's detail
    shares = [photos_measured[r].print.detail for r in range(len(photos_measured)) if photos_measured[r].print]
    assert min(shares) >= phash.LOW_DETAIL, min(shares)
    share = [m.print.detail for m in fields_measured if m.print and not m.print.flat]
    assert np.mean(np.array(share) < phash.LOW_DETAIL) >= 0.9


def test_inspect_says_which_groups_are_look_alike_in_text_json_jsonl_and_html(tmp_path, imgprep_cli):
    """Every report of a group says whether it is look-alike, and counts them the same."""
    from imgprep.inspect import html
    from imgprep.inspect.run import inspect as run_inspect
    from imgprep.storage.stores import Storage

    blobs = [_jpeg(fields.field(1)), _field_copy(1), _jpeg(fields.field(2)), _field_copy(2)]
    photo = imgfactory.photo(200, 150, seed=300)
    base = dupkinds.original(photo)
    blobs += [base, dupkinds.copy(photo, "cropped 7% from one side", base)]
    lines = []
    for i, blob in enumerate(blobs):
        imgfactory.write(tmp_path / "img" / f"{i}.jpg", blob)
        lines.append(f"{i}\t{i % 2}\timg/{i}.jpg\n")
    (tmp_path / "all.lst").write_text("".join(lines))
    doc = json.loads(imgprep_cli("inspect", tmp_path / "all.lst", "--json").stdout)
    kinds = {tuple(r["path"] for r in g["images"]): g["lookalike"] for g in doc["duplicate_groups"]}
    assert kinds == {("img/0.jpg", "img/1.jpg"): True, ("img/2.jpg", "img/3.jpg"): True,
                     ("img/4.jpg", "img/5.jpg"): False}
    s = doc["summary"]
    assert (s["lookalike_groups"], s["lookalike_images"], s["lookalike_conflicts"]) == (2, 4, 2)
    text = imgprep_cli("inspect", tmp_path / "all.lst", "--dedup-report", tmp_path / "groups.jsonl").stdout
    assert "duplicates: 3 group(s) holding 6 of 6 images" in text
    assert "2 of them look-alike group(s) holding 4 images (images with no detail beyond the thumbnail" in text
    assert "label conflicts: 3 group(s) hold more than one label; 2 of them look-alike" in text
    assert text.count("look-alike x2") == 2
    report = [json.loads(line) for line in (tmp_path / "groups.jsonl").read_text().splitlines()]
    assert sorted(g["lookalike"] for g in report) == [False, True, True]
    findings = run_inspect(str(tmp_path / "all.lst"), storage=Storage())
    html.write_html(findings, str(tmp_path / "report.html"), workers=1)
    page = (tmp_path / "report.html").read_text()
    assert page.count('<span class="tag lookalike">LOOK-ALIKE</span>') == 2
    assert "data-count=lookalike-groups><b class=tally>2</b>" in page
