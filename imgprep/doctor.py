"""What this installation can do, as data: which image path runs and why, and what is missing.

Pillow reports its capabilities through ``PIL.features``; imgprep does the same here so that
``imgprep doctor`` and bug reports say the same thing.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _pil_distributions() -> list[str]:
    found = []
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name in ("pillow", "pillow-simd"):
            found.append(f"{dist.metadata['Name']} {dist.version}")
    return sorted(found)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def checks() -> list[Check]:
    out = [Check("python", True, platform.python_version())]
    dists = _pil_distributions()
    if not dists:
        out.append(Check("pillow", False, "neither Pillow nor Pillow-SIMD is installed: pip install Pillow"))
    elif len(dists) > 1:
        out.append(Check("pillow", False, f"both installed ({', '.join(dists)}): one overwrote the other; "
                                          "uninstall both and reinstall one"))
    else:
        from PIL import features

        turbo = features.check_feature("libjpeg_turbo")
        simd = dists[0].lower().startswith("pillow-simd")
        out.append(Check("pillow", True, f"{dists[0]}{' (SIMD)' if simd else ''}, "
                                         f"libjpeg-turbo {'yes' if turbo else 'no'}"))
    avx2 = "avx2" in _cpu_flags()
    out.append(Check("cpu", True, f"{os.cpu_count()} cores, AVX2 {'yes' if avx2 else 'no'}", required=False))
    try:
        from imgprep.imaging.transform import select

        chosen = select()
        out.append(Check("image path", True, f"{chosen.name}: {chosen.reason}; {chosen.preferred_executor} workers"))
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure instead of dying on the first
        out.append(Check("image path", False, str(exc)))
    for module in ("boto3", "obstore", "numpy", "tqdm", "click"):
        present = importlib.util.find_spec(module) is not None
        out.append(Check(module, present, "installed" if present else f"missing (pip install {module})"))
    return out
