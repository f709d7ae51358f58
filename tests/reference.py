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


def above(probs, threshold):
    """probs > threshold compared in the probabilities' own float type, as upstream's xarray
    comparison does: a float32 pixel equal to float32(threshold) is not above it, though
    float64 would put it above a threshold such as 0.3 (float32(0.3) > 0.3).
    DARTS' uint8 percent v (nodata 255) passes when v >= 100 * threshold (semantics.md)."""
    probs = np.asarray(probs)
    if probs.dtype == np.uint8:
        return (probs != 255) & (probs.astype(np.float64) >= 100 * threshold)
    probs = probs if probs.dtype.kind == "f" else probs.astype(np.float64)
    return np.nan_to_num(probs, nan=0.0) > probs.dtype.type(threshold)


def percent_as_fraction(percent):
    """DARTS' uint8 percent as the probabilities it stands for (v / 100, NaN for nodata 255)."""
    percent = np.asarray(percent)
    return np.where(percent == 255, np.nan, percent / np.float32(100)).astype(np.float32)


def _excluded_objects(objects, labels, excluded, boundary, max_share=0.0):
    """Labels of the objects an exclusion mask takes: with remove, those with more than
    `max_share` of their pixels excluded (0: any excluded pixel); with clip, those with every
    pixel excluded (nothing of them is left)."""
    if boundary == "remove":
        return {region for region in range(1, labels.max() + 1)
                if (excluded & (labels == region)).sum() > max_share * (labels == region).sum()}
    return {region for region in range(1, labels.max() + 1) if excluded[labels == region].all()}


def binarize(probs, threshold, min_object_size, mask, size_connectivity=8, exclude=None, boundary="remove",
             max_share=0.0):
    objects = above(probs, threshold)
    valid = np.asarray(mask) != 0
    if boundary == "clip":
        objects &= valid
    labels = label(objects, connectivity=2)
    touching = np.unique(labels[~valid & objects])
    objects &= ~np.isin(labels, touching)
    if exclude is not None:
        excluded = np.asarray(exclude) != 0
        if boundary == "remove":
            objects &= ~np.isin(labels, list(_excluded_objects(objects, labels, excluded, boundary, max_share)))
        else:
            objects &= ~excluded
    sizes_labels = label(objects, connectivity=2 if size_connectivity == 8 else 1)
    sizes = np.bincount(sizes_labels.ravel())
    too_small = sizes < min_object_size
    too_small[0] = False
    objects &= ~too_small[sizes_labels]
    return objects


def prepare_export(probabilities, quality, threshold=0.5, erosion=10, min_size=32, level=0,
                   edge=None, boundary="remove", size_connectivity=8, exclude=None, max_share=0.0):
    """(extent uint8, binarized bool, masked probabilities) for one probability layer (float
    0..1, or DARTS' uint8 percent: thresholded as percent, masked as v / 100)."""
    level = LEVELS.get(level, level)
    valid = np.asarray(quality) >= level
    if level > 0:
        valid = erode_mask(valid, erosion, edge) != 0
    percent = np.asarray(probabilities).dtype == np.uint8
    fractions = percent_as_fraction(probabilities) if percent else np.asarray(probabilities)
    masked = np.where(valid, fractions, np.nan).astype(fractions.dtype)
    source = probabilities if boundary == "remove" else (np.where(valid, probabilities, 255).astype(np.uint8)
                                                         if percent else masked)
    binarized = binarize(source, threshold, min_size, valid, size_connectivity, exclude, boundary, max_share)
    return valid.astype(np.uint8), binarized, masked


def object_table(binary, values=None):
    """Per 8-connected object (skimage label order): npixel and, with values, the
    statistics of the non-NaN values, one object at a time with numpy."""
    labels = label(np.asarray(binary) != 0, connectivity=2)
    table = {"Region_ID": [], "npixel": [], "min": [], "max": [], "mean": [], "median": [], "std": []}
    for region in range(1, labels.max() + 1):
        inside = labels == region
        table["Region_ID"].append(region)
        table["npixel"].append(int(inside.sum()))
        if values is not None:
            picked = np.asarray(values, dtype=np.float64)[inside]
            picked = picked[~np.isnan(picked)]
            for name, function in [("min", np.min), ("max", np.max), ("mean", np.mean), ("median", np.median),
                                   ("std", np.std)]:
                table[name].append(function(picked) if picked.size else np.nan)
    return labels, {name: np.array(column) for name, column in table.items() if column}


def object_counts(probs, threshold, min_object_size, mask, size_connectivity=8, exclude=None, boundary="remove",
                  max_share=0.0):
    """What binarize removes, counted: objects above the threshold, removed at the boundary,
    (with `exclude`) removed by the exclusion mask, removed as too small (components of the
    size connectivity)."""
    objects = above(probs, threshold)
    if boundary == "clip":
        objects &= np.asarray(mask) != 0
    labels = label(objects, connectivity=2)
    touching = set(np.unique(labels[(np.asarray(mask) == 0) & objects])) - {0}
    counts = {"objects": int(labels.max()), "removed_at_boundary": len(touching)}
    inside = objects & ~np.isin(labels, list(touching))
    if exclude is not None:
        excluded = np.asarray(exclude) != 0
        lost = _excluded_objects(objects, labels, excluded, boundary, max_share) - touching
        counts["removed_excluded"] = len(lost)
        inside &= ~np.isin(labels, list(lost))
        if boundary == "clip":
            inside &= ~excluded
    sizes_labels = label(inside, connectivity=2 if size_connectivity == 8 else 1)
    sizes = np.bincount(sizes_labels.ravel())[1:]
    counts["removed_too_small"] = int((sizes < min_object_size).sum()) if min_object_size > 1 else 0
    return counts


def quality_from_scl(scl):
    out = np.empty(np.shape(scl), np.uint8)
    for index, value in np.ndenumerate(scl):
        out[index] = 0 if value in (0, 1) else 2 if value in (2, 4, 5, 6, 7, 10) else 1
    return out
