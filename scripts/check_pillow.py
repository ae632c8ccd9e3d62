"""Check that this interpreter has Pillow-SIMD built with AVX2, and not stock Pillow.

Pillow and Pillow-SIMD both install the ``PIL`` package, so having both means one silently
overwrote the other; and a Pillow-SIMD built without ``-mavx2`` runs at stock speed.  The AVX2
test disassembles ``PIL._imaging`` and looks for instructions on ymm registers, which stock wheels
do not contain (they are built for baseline x86-64).

Exit status 0 when all is well, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys

YMM = re.compile(rb"%ymm\d+")


def installed_pil_distributions() -> set[str]:
    names = set()
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()
        if name in ("pillow", "pillow-simd"):
            names.add(name)
    return names


def count_avx2_instructions(path: str, enough: int = 100) -> int:
    """Count disassembled lines using ymm registers, stopping once ``enough`` are seen."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise RuntimeError("objdump not found (apt-get install binutils)")
    proc = subprocess.Popen([objdump, "-d", "--no-show-raw-insn", path], stdout=subprocess.PIPE)
    found = 0
    try:
        for line in proc.stdout or ():
            if YMM.search(line):
                found += 1
                if found >= enough:
                    break
    finally:
        proc.kill()
        proc.wait()
    return found


def main() -> int:
    dists = installed_pil_distributions()
    if dists != {"pillow-simd"}:
        what = " and ".join(sorted(dists)) or "neither Pillow nor Pillow-SIMD"
        print(f"check_pillow: expected Pillow-SIMD alone, found {what}", file=sys.stderr)
        return 1
    import PIL
    from PIL import _imaging

    so = _imaging.__file__
    try:
        found = count_avx2_instructions(so)
    except RuntimeError as exc:
        print(f"check_pillow: {exc}", file=sys.stderr)
        return 1
    if found == 0:
        print(f"check_pillow: {so} has no AVX2 code; rebuild with CC='cc -mavx2'", file=sys.stderr)
        return 1
    print(f"check_pillow: Pillow-SIMD {PIL.__version__} with AVX2 ({so})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
