"""What to do to every image: the packer's per-image options, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from imgprep.errors import UsageError
from imgprep.formats import typecheck

FITS = ("crop", "pad", "stretch")
ENCODINGS = ("jpg", "png")
# Decompression-bomb guard: images above this many pixels are refused after reading their
# header, before any pixel is decoded (Pillow's own guard errors only at ~179 MP).
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class TransformSpec:
    """Per-image options (im2rec's rec mode plus an exact output size).

    ``resize``: shorter side in pixels (0 keeps the size).  ``size``/``fit``: exact (W, H) by
    centre crop, letterbox pad or stretch.  ``center_crop``: square centre crop before resizing.
    ``color``: 1 RGB, 0 grayscale, -1 as decoded (alpha kept for PNG).  ``pass_through``: the
    file's bytes unchanged.
    """

    resize: int = 0
    size: tuple[int, int] | None = None
    fit: str = "crop"
    center_crop: bool = False
    quality: int = 95
    encoding: str = "jpg"
    color: int = 1
    pass_through: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    pad_color: int = 0

    def __post_init__(self) -> None:
        self._check_types()
        if self.resize < 0:
            raise UsageError(f"--resize must be positive, got {self.resize}")
        self._check_size()
        if self.fit not in FITS:
            raise UsageError(f"--fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be between 1 and 100, got {self.quality}")
        if self.encoding not in ENCODINGS:
            raise UsageError(f"--encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if self.color not in (1, 0, -1):
            raise UsageError(f"--color must be 1, 0 or -1, got {self.color}")
        if self.max_pixels < 1:
            raise UsageError(f"--max-pixels must be positive, got {self.max_pixels}")
        if self.size is not None and self.size[0] * self.size[1] > self.max_pixels:
            raise UsageError(
                f"--size {self.size[0]}x{self.size[1]} makes images above the limit of {self.max_pixels} pixels "
                "(raise it with --max-pixels)"
            )
        if self.pass_through and (self.resize or self.size or self.center_crop):
            raise UsageError("--pass-through stores files unchanged; it cannot be combined with resizing or cropping")

    def _check_size(self) -> None:
        if self.size is None:
            return
        if len(self.size) != 2 or min(self.size) < 1:
            raise UsageError(f"--size must be WxH with positive numbers, got {self.size}")
        if self.resize:
            raise UsageError("--resize and --size cannot be used together")
        if self.center_crop:
            raise UsageError("--center-crop and --size cannot be used together (use --fit crop)")

    def _check_types(self) -> None:
        """Values given from Python are refused here when the CLI's parsers would refuse them."""
        for name in ("resize", "quality", "color", "max_pixels", "pad_color"):
            object.__setattr__(self, name, typecheck.integer(name, getattr(self, name)))
        for name in ("center_crop", "pass_through"):
            typecheck.flag(name, getattr(self, name))
        for name in ("fit", "encoding"):
            typecheck.text(name, getattr(self, name))
        object.__setattr__(self, "size", typecheck.pair("size", self.size))

    @property
    def transforms_geometry(self) -> bool:
        return bool(self.resize or self.size or self.center_crop)

    def describe(self) -> str:
        if self.pass_through:
            return "pass-through (file bytes unchanged)"
        parts = []
        if self.center_crop:
            parts.append("center-crop")
        if self.resize:
            parts.append(f"shorter side {self.resize}")
        if self.size:
            parts.append(f"{self.size[0]}x{self.size[1]} ({self.fit})")
        parts.append({1: "RGB", 0: "grayscale", -1: "colour as decoded"}[self.color])
        parts.append(f"{self.encoding} q{self.quality}" if self.encoding == "jpg" else "png")
        return ", ".join(parts)
