"""Smooth random colour fields: each a sum of three random sinusoids, 64-96 px on a side.

Distinct images whose perceptual hashes crowd together far more than photos' do (few low
frequencies carry all the energy), so chance links between strangers are common: the data
that shows whether duplicate groups chain unrelated images.
"""

from __future__ import annotations

import numpy as np


def field(seed: int) -> np.ndarray:
    """An RGB uint8 image, 64-96 px a side, the sum of three sinusoids of random direction,
    frequency (up to three cycles across), phase and colour."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(64, 97, 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, 3))
    for _ in range(3):
        angle = rng.uniform(0, np.pi)
        cycles = rng.uniform(0.5, 3.0)
        wave = np.sin(2 * np.pi * cycles * (x * np.cos(angle) / w + y * np.sin(angle) / h) + rng.uniform(0, 2 * np.pi))
        out += wave[:, :, None] * rng.uniform(-60, 60, 3)
    return np.clip(out + 128, 0, 255).astype(np.uint8)
