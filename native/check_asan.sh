#!/usr/bin/env bash
# Build imgprep._native with AddressSanitizer + UBSan in a scratch copy of the package and run
# the native tests (fuzz included) against it, then a leak check of the C entry points.
#
#   native/check_asan.sh [python]        # default: .venv/bin/python, else python3
#
# The scratch copy keeps the normal in-place build untouched.  Exit status is non-zero on any
# sanitizer report or test failure.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-}"
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/imgprep-asan.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "check_asan: building with -fsanitize=address,undefined in $WORK"
cp -r "$REPO/imgprep" "$WORK/pkg-imgprep"
mkdir -p "$WORK/pkg"
mv "$WORK/pkg-imgprep" "$WORK/pkg/imgprep"
rm -f "$WORK"/pkg/imgprep/_native*.so
(
    cd "$REPO"
    IMGPREP_FORCE_NATIVE=1 \
    IMGPREP_NATIVE_CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
    IMGPREP_NATIVE_LDFLAGS="-fsanitize=address,undefined" \
        "$PY" setup.py -q build_ext --build-lib "$WORK/lib" --build-temp "$WORK/tmp" >"$WORK/build.log" 2>&1 \
        || { cat "$WORK/build.log"; exit 1; }
)
cp "$WORK"/lib/imgprep/_native*.so "$WORK/pkg/imgprep/"

export PYTHONPATH="$WORK/pkg"
export LD_PRELOAD="$LIBASAN $LIBUBSAN"
# CPython's own allocations at exit are not ours: leaks are checked separately below.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc

# Run from the scratch folder: `python -m` puts the working directory first on sys.path, and the
# repo's own imgprep/ (with the normal build) must not shadow the sanitised copy.
cd "$WORK"
"$PY" -c "import imgprep._native as n, sys; assert n.__file__.startswith('$WORK'), n.__file__; print('check_asan: using', n.__file__)"

"$PY" -m pytest -q -p no:cacheprovider --rootdir "$REPO" -c "$REPO/pyproject.toml" \
    "$REPO/tests/test_native.py" "$REPO/tests/test_native_fuzz.py" "$REPO/tests/test_data_native.py" \
    "$REPO/tests/test_pack_workers.py" "$REPO/tests/test_list_scan.py" "$REPO/tests/test_print_rows.py"

echo "check_asan: leak check of probe/transform/encode_pixels/frame/pack_batch/decode_batch/jpeg_sizes/decode_crops/lst_scan/phash_records"
# CPython 3.11 itself leaks a few objects at exit; only stacks through our code or libturbojpeg count.
ASAN_OPTIONS="detect_leaks=1:exitcode=0" "$PY" - "$REPO" 2>"$WORK/leaks.txt" <<'EOF'
import sys

sys.path.insert(0, sys.argv[1] + "/tests")
import imgfactory as fac
from imgprep import _native as n

good = [fac.jpeg(97, 61, quality=90), fac.jpeg(40, 30, mode="L"), fac.jpeg(50, 70, progressive=True, orientation=6)]
bad = [g[: len(g) // 2] for g in good] + [b"\xff\xd8\xff" + bytes(50), fac.jpeg(30, 20, mode="CMYK")]
for _ in range(20):
    for d in good + bad:
        for scale in (1, 2, 8):
            try:
                n.probe(d)
                n.transform(d, scale, 5, (0.0, 0.0, 1.0, 1.0), (3, 2), (5, 4), (1, 1), False, 90, 0)
            except (n.Error, ValueError):
                pass
    for head, body in ((b"", b""), (b"ab", good[0]), (b"x" * 24, b"\x0a\x23\xd7\xce" * 9 + b"z")):
        n.frame(head, body)
    for args in ((bytes(28 * 28), 28, 28, 1, 95), (bytes(6 * 4 * 3), 6, 4, 3, 90), (bytes(5), 2, 2, 1, 95)):
        try:
            n.encode_pixels(*args)
        except (n.Error, ValueError):
            pass
    items = good + bad + [b"\xff\xd8\xff\x0a\x23\xd7\xce\xff\xd9"]
    for spec in ((False, True, 16, 0, 0, 0, False, 90, 1, 10**8, 0), (True, True, 0, 0, 0, 0, False, 95, 1, 10**8, 0),
                 (False, True, 0, 20, 10, 1, True, 80, -1, 10**8, 9)):
        n.pack_batch(spec, [None] * len(items), items, list(range(len(items))), [(1.0, 2.0)] * len(items), True, False)
        n.pack_batch(spec, ["/nonexistent", "/dev/null"], None, [1, 2**64], [(1.0,), ("x",)], False, True)
    n.decode_batch(items, 1)
    # the reader's batch calls (reader_py.c, reader_crop.c)
    import numpy as np
    n.jpeg_sizes(good + bad)
    for box in ((0.0, 0.0, 30.0, 20.0), (5.0, 5.0, 5.0, 9.0)):
        try:
            n.decode_crops(good + bad, np.asarray([box] * len(good + bad)), np.ones(len(good + bad), np.uint8),
                           np.zeros((len(good + bad), 6, 8, 3), np.uint8), False)
        except ValueError:
            pass
    # the .lst scanner (lstscan.c): taken lines, stops, non-ASCII paths, items and ids
    from imgprep.formats.lst import LstItem
    text = b"1\t2.5\ta.jpg\n2\t-0\t\xc3\xa9.jpg\r\n3\t1\t\xc2\xa0x\n4\t+5\tx\n" * 50
    for cls in (None, LstItem):
        for start in (0, 7, len(text) - 3):
            n.lst_scan(text, start, 0, 1000, cls)
            n.lst_scan(text, start, 3, 2, cls)
    for wrong in ((text, -1, 0, 1, None), (text, 0, 0, 1, 5), (text, 0, 2, 1, None)):
        try:
            n.lst_scan(*wrong)
        except (ValueError, TypeError):
            pass
    # the pack workers' fingerprint rows (phash_batch.c): decodable, damaged, framed in parts, cut short
    from imgprep.imaging import phash
    recs = [n.frame(b"\0" * 24, d) for d in good + bad + [b"\x0a\x23\xd7\xce" * 3]]
    phash.record_rows(b"".join(recs), [len(r) for r in recs])
    phash.record_rows(b"".join(recs)[:-7], [len(r) for r in recs[:-1]] + [len(recs[-1]) - 7])
print("check_asan: leak-check loop done")
EOF
if grep -E "native/(core|module|batch|reader_crop|reader_py|lstscan|phash|phash_batch|blake2b)\.c|libturbojpeg|libjpeg|_native" "$WORK/leaks.txt"; then
    echo "check_asan: leaks through imgprep._native (see above)"
    exit 1
fi
echo "check_asan: no leaks through imgprep._native or libturbojpeg"
echo "check_asan: OK"
