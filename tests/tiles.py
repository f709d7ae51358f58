"""Synthetic DARTS-like tiles: smooth probability blobs, noise, NaN, clouds, nodata."""

import numpy as np
from scipy import ndimage as ndi


def random_tile(seed: int, shape=(96, 128)):
    """(probabilities float32 with NaN, quality uint8 0/1/2) with varied structure."""
    rng = np.random.default_rng(seed)
    h, w = shape
    kind = seed % 4
    if kind == 0:  # smooth blobs
        probs = ndi.gaussian_filter(rng.random(shape), sigma=rng.uniform(1.5, 4))
        probs = (probs - probs.min()) / max(np.ptp(probs), 1e-9)
    elif kind == 1:  # salt noise: many single pixels and diagonal contacts
        probs = rng.random(shape) ** 3
    elif kind == 2:  # blobs plus noise
        probs = ndi.gaussian_filter(rng.random(shape), sigma=2)
        probs = (probs - probs.min()) / max(np.ptp(probs), 1e-9)
        probs = np.clip(probs + rng.normal(0, 0.1, shape), 0, 1)
    else:  # sparse rectangles
        probs = rng.random(shape) * 0.4
        for _ in range(rng.integers(1, 12)):
            y, x = rng.integers(0, h), rng.integers(0, w)
            probs[y:y + rng.integers(1, 15), x:x + rng.integers(1, 15)] = rng.uniform(0.5, 1)
    probs = probs.astype(np.float32)
    probs[rng.random(shape) < 0.02] = np.nan

    quality = np.full(shape, 2, np.uint8)
    clouds = ndi.gaussian_filter(rng.random(shape), 3) > 0.52
    quality[clouds] = 1
    corner = rng.integers(0, 4)
    yy, xx = np.mgrid[:h, :w]
    diag = (yy + xx) < rng.integers(0, h) if corner % 2 else (yy - xx) > rng.integers(0, h)
    quality[diag] = 0
    quality[rng.random(shape) < 0.005] = 0
    return probs, quality


def random_exclusion(seed: int, shape=(96, 128)):
    """A uint8 exclusion mask (1 = excluded) like a water mask: smooth lakes and a river, so
    that objects lie wholly inside, partly inside and outside of it."""
    rng = np.random.default_rng(10_000 + seed)
    h, w = shape
    lakes = ndi.gaussian_filter(rng.random(shape), sigma=rng.uniform(2, 5))
    excluded = lakes > np.quantile(lakes, rng.uniform(0.7, 0.95))
    yy, xx = np.mgrid[:h, :w]
    river = np.abs(yy - (h / 2 + (xx - w / 2) * rng.uniform(-1, 1))) < rng.uniform(0.5, 3)
    return (excluded | river).astype(np.uint8)
