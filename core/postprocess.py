"""DARTS postprocessing on plain 2-D arrays (numpy or cupy), exact to semantics.md.

The public, upstream-shaped API (xarray or arrays, validation, devices) is in
`api.py`; this module holds the algorithms once, for every backend.
"""

from __future__ import annotations

import math

import numpy as np

from .runs import clear_runs, expand_ranges, find_runs, flat_view, run_components


def disk_half_widths(radius: int) -> list[int]:
    """Half-width of scikit-image's disk(radius) in each row dy = -radius..radius."""
    return [math.isqrt(radius * radius - dy * dy) for dy in range(-radius, radius + 1)]


def erode_valid(valid, size: int, edge_size: int, xp=np):
    """Erode a bool validity mask by disk(size), then invalidate an edge band.

    A pixel stays valid only if no invalid pixel lies within the disk around it; pixels
    outside the raster count as valid. Equivalent to dilating the invalid runs by the disk,
    row by row, so only the ring around invalid regions is touched.
    """
    height, width = valid.shape
    eroded = xp.array(valid, dtype=bool, order="C")  # a C-ordered copy: painted in flat order
    rows, starts, ends = find_runs(~valid, xp)
    if size > 0 and rows.size:
        _clear_dilated(eroded, rows, starts, ends, size, xp)
    if edge_size > 0:
        eroded[:edge_size, :] = False
        eroded[-edge_size:, :] = False
        eroded[:, :edge_size] = False
        eroded[:, -edge_size:] = False
    return eroded


def _clear_dilated(eroded, rows, starts, ends, radius: int, xp):
    """Set to False every pixel within disk(radius) of an invalid run (given as runs)."""
    height, width = eroded.shape
    stride = width + 1  # one unused column per row, so intervals of two rows never touch
    lows, highs = [], []
    for dy, half in zip(range(-radius, radius + 1), disk_half_widths(radius)):
        target = rows + dy
        inside = (target >= 0) & (target < height)
        base = target[inside] * stride
        lows.append(base + xp.maximum(starts[inside] - half, 0))
        highs.append(base + xp.minimum(ends[inside] + half, width))
    lows, highs = xp.concatenate(lows), xp.concatenate(highs)
    # Sweep over interval ends: a stretch is newly invalid where some dilated interval
    # covers it and no original invalid run does (those pixels are already False).
    original = rows * stride
    positions = xp.concatenate([lows, highs, original + starts, original + ends])
    dilated_step = xp.concatenate([xp.ones_like(lows), -xp.ones_like(highs), xp.zeros_like(starts), xp.zeros_like(ends)])
    original_step = xp.concatenate([xp.zeros_like(lows), xp.zeros_like(highs), xp.ones_like(starts), -xp.ones_like(ends)])
    order = xp.argsort(positions, kind="stable")
    positions = positions[order]
    covered = xp.cumsum(dilated_step[order]) > 0
    in_original = xp.cumsum(original_step[order]) > 0
    lengths = xp.diff(positions)
    paint = covered[:-1] & ~in_original[:-1] & (lengths > 0)
    seg_starts, seg_lengths = positions[:-1][paint], lengths[paint]
    flat_starts = (seg_starts // stride) * width + seg_starts % stride
    flat_view(eroded)[expand_ranges(flat_starts, seg_lengths, xp)] = False


def binarize_array(probabilities, threshold: float, min_object_size: int, valid, size_connectivity: int = 8, xp=np,
                   counts: dict | None = None):
    """Threshold, drop 8-connected objects touching invalid pixels, drop small objects.

    `probabilities` is float (NaN = no object); `valid` is read by truth value.
    Object sizes are counted with `size_connectivity` (8, or 4 as upstream does).
    `counts`, if given, receives the number of `objects` above the threshold, of those
    `removed_at_boundary` and of those `removed_too_small` (in size_connectivity components).
    """
    objects = xp.ascontiguousarray(probabilities > threshold)  # runs are painted in flat order
    rows, starts, ends = find_runs(objects, xp)
    tally = counts if counts is not None else {}
    tally.update(objects=0, removed_at_boundary=0, removed_too_small=0)
    if rows.size == 0:
        return objects
    labels, count = run_components(rows, starts, ends, 8, xp)
    keep = xp.ones(rows.size, dtype=bool)
    tally["objects"] = count

    width = objects.shape[1]
    touching = xp.flatnonzero(objects & ~valid)
    if touching.size:
        run_starts = rows * width + starts
        touching_runs = xp.searchsorted(run_starts, touching, side="right") - 1
        bad_objects = xp.zeros(count, dtype=bool)
        bad_objects[labels[touching_runs]] = True
        keep &= ~bad_objects[labels]
        tally["removed_at_boundary"] = int(bad_objects.sum())

    if min_object_size > 1:
        if size_connectivity != 8:
            kept = xp.flatnonzero(keep)
            sub_labels, sub_count = run_components(rows[kept], starts[kept], ends[kept], size_connectivity, xp)
            labels = xp.full(rows.size, -1, dtype=xp.int64)
            labels[kept] = sub_labels
            count = sub_count
        sizes = xp.bincount(labels[keep], weights=(ends - starts)[keep], minlength=count)
        small = sizes < min_object_size
        # Components with no kept run have size 0: only count those that had pixels left.
        tally["removed_too_small"] = int((small & (sizes > 0)).sum())
        keep[keep] &= ~small[labels[keep]]

    dropped = ~keep
    if dropped.any():
        clear_runs(objects, rows[dropped], starts[dropped], ends[dropped], xp)
    return objects
