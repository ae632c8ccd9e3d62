#!/usr/bin/env bash
# bench_scaling.py on a many-core host that has Python with numpy, Pillow, click and tqdm, but no
# libturbojpeg headers and no network: the native core is built in place against Debian's
# libturbojpeg0/-dev and libjpeg62-turbo/-dev (the training reader's libjpeg) unpacked aside (never
# installed), corpora are generated there.
#
#   apt-get download libturbojpeg0 libturbojpeg0-dev libjpeg62-turbo libjpeg62-turbo-dev   # with Debian's archive
#   bash benchmarks/scaling_on_bare_host.sh DEBS_DIR OUT_DIR [bench_scaling.py args ...]
#
# Writes OUT_DIR/scaling.md and .json (every core), OUT_DIR/two-cores.md (taskset -c 0,1) and the log.
# A folder ./base (a `git archive` of an older commit) is run at the largest worker count beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=$(cd "$1" && pwd)
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
PY=${PYTHON:-python3}
TJ=$PWD/.turbojpeg
START=$(date +%s)
say() { echo "[$(( $(date +%s) - START )) s] $*"; }

mkdir -p "$TJ"
for deb in "$DEBS"/libturbojpeg0*.deb "$DEBS"/libjpeg62-turbo*.deb; do dpkg -x "$deb" "$TJ"; done
LIB=$(dirname "$(find "$TJ" -name 'libturbojpeg.so*' | head -1)")
export CPATH="$TJ/usr/include${CPATH:+:$CPATH}" LIBRARY_PATH="$LIB" LD_LIBRARY_PATH="$LIB"
[ -e "$LIB/libturbojpeg.so" ] || ln -sf "$(basename "$(find "$LIB" -name 'libturbojpeg.so.*' | head -1)")" "$LIB/libturbojpeg.so"

# The extension, built as setup.py builds it (setuptools may be missing here); a baseline tree
# gets its own, from its own sources (the batch calls changed with the code).
INC=$($PY -c "import sysconfig; print(sysconfig.get_paths()['include'])")
EXT=$($PY -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
build() {
    (cd "$1" && cc -shared -fPIC -O3 -std=c11 -Wall -Wextra -fvisibility=hidden -I"$INC" native/*.c \
        -lturbojpeg -ljpeg -lm -o "imgprep/_native$EXT" 2>&1 | grep -v warning || true)
    (cd "$1" && $PY -c "import imgprep._native as n; print('$1: native core on libjpeg-turbo', n.LIBJPEG_TURBO_VERSION)")
}
build .
BASE=()
if [ -d base/imgprep ]; then
    build base
    BASE=(--baseline "$PWD/base")
fi
say "built; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

$PY benchmarks/bench_scaling.py --synthetic "${BASE[@]}" --markdown "$OUT/scaling.md" --json "$OUT/scaling.json" "$@" \
    2>&1 | tee "$OUT/scaling.log"
say "all cores done"
if [ "$(nproc)" -gt 2 ] && [ -z "${SKIP_TWO:-}" ]; then
    taskset -c 0,1 $PY benchmarks/bench_scaling.py --synthetic --corpus small tiny --workers 1 2 \
        --markdown "$OUT/two-cores.md" 2>&1 | tee "$OUT/two-cores.log"
    say "two cores done"
fi
