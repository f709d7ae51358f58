"""Slow, obviously-correct implementation of semantics.md with scikit-image.

Pixel-level labelling and per-object checks, no cleverness: the core is compared with
this on every test tile, and the benchmark measures the core against it.
"""

import numpy as np
from skimage.measure import label
from skimage.morphology import disk, erosion

LEVELS = {"none": 0, "low_quality": 1, "high_quality": 2}


def erode_mask(mask, size, edge_size=None):
    valid = np.asarray(mask) != 0
    # Pixels beyond the raster count as valid: pad with valid pixels, erode, crop.
    padded = np.pad(valid, size, constant_values=True)
    eroded = erosion(padded, disk(size))[size:size + valid.shape[0], size:size + valid.shape[1]].copy()
    edge = size if edge_size is None else edge_size
    if edge > 0:
        eroded[:edge, :] = False
        eroded[-edge:, :] = False
        eroded[:, :edge] = False
        eroded[:, -edge:] = False
    return eroded.astype(np.uint8)


def binarize(probs, threshold, min_object_size, mask, size_connectivity=8):
    objects = np.nan_to_num(np.asarray(probs, dtype=np.float64), nan=0.0) > threshold
    valid = np.asarray(mask) != 0
    labels = label(objects, connectivity=2)
    touching = np.unique(labels[~valid & objects])
    objects &= ~np.isin(labels, touching)
    sizes_labels = label(objects, connectivity=2 if size_connectivity == 8 else 1)
    sizes = np.bincount(sizes_labels.ravel())
    too_small = sizes < min_object_size
    too_small[0] = False
    objects &= ~too_small[sizes_labels]
    return objects


def prepare_export(probabilities, quality, threshold=0.5, erosion=10, min_size=32, level=0,
                   edge=None, boundary="remove", size_connectivity=8):
    """(extent uint8, binarized bool, masked probabilities) for one probability layer."""
    level = LEVELS.get(level, level)
    valid = np.asarray(quality) >= level
    if level > 0:
        valid = erode_mask(valid, erosion, edge) != 0
    masked = np.where(valid, probabilities, np.nan).astype(np.asarray(probabilities).dtype)
    source = probabilities if boundary == "remove" else masked
    binarized = binarize(source, threshold, min_size, valid, size_connectivity)
    return valid.astype(np.uint8), binarized, masked
