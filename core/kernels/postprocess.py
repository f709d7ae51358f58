"""DARTS postprocessing on plain 2-D arrays (numpy or cupy), exact to semantics.md.

The public, upstream-shaped API (xarray or arrays, validation, devices) is in
`api.py`; this module holds the algorithms once, for every backend.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ...definitions import PROBABILITY_SCALES
from .runs import (clear_runs, components_with_pixels, count_pixels_in_components, expand_ranges, find_runs,
                   find_runs_host, flat_view, host_pixels_where, run_components)
from .threads import each_in_threads, host_pass


def disk_half_widths(radius: int) -> list[int]:
    """Half-width of scikit-image's disk(radius) in each row dy = -radius..radius."""
    return [math.isqrt(radius * radius - dy * dy) for dy in range(-radius, radius + 1)]


def erode_valid(valid, size: int, edge_size: int, xp=np):
    """Erode a bool validity mask by disk(size), then invalidate an edge band.

    A pixel stays valid only if no invalid pixel lies within the disk around it; pixels
    outside the raster count as valid. Equivalent to dilating the invalid runs by the disk,
    row by row, so only the ring around invalid regions is touched.
    """
    eroded = xp.array(valid, dtype=bool, order="C")  # a C-ordered copy: painted in flat order
    return erode_valid_in_place(eroded, size, edge_size, xp)


def erode_valid_in_place(eroded, size: int, edge_size: int, xp=np):
    """erode_valid of the C-ordered bool mask `eroded`, painted into it; returns it."""
    if xp is np:
        rows, starts, ends = find_runs_host(eroded, invert=True)  # the invalid runs, without ~eroded
    else:
        rows, starts, ends = find_runs(~eroded, xp)
    if size > 0 and rows.size:
        _clear_dilated(eroded, rows, starts, ends, size, xp)
    if edge_size > 0:
        eroded[:edge_size, :] = False
        eroded[-edge_size:, :] = False
        eroded[:, :edge_size] = False
        eroded[:, -edge_size:] = False
    return eroded


def clear_edge_band(part, edge_size: int, shape, location):
    """Clear, in place, the pixels of `part` (the pixels of a raster of `shape` at `location`,
    ((row0, row1), (col0, col1))) that lie within `edge_size` of the raster's own edges."""
    if edge_size <= 0:
        return part
    (y0, _), (x0, _) = location
    height, width = shape
    part[: max(0, edge_size - y0), :] = False
    part[max(0, height - edge_size - y0):, :] = False
    part[:, : max(0, edge_size - x0)] = False
    part[:, max(0, width - edge_size - x0):] = False
    return part


def halo_window(location, size: int, shape):
    """((row0, row1), (col0, col1)): the window at `location` grown by `size` pixels on each
    side that lies inside a raster of `shape`: all that erode_valid of that window's pixels
    reads (its disk reaches `size` pixels; outside the raster counts as valid)."""
    return tuple((max(0, start - size), min(length, stop + size)) for (start, stop), length in zip(location, shape))


def erode_valid_window(grown, size: int, edge_size: int, location, grown_location, shape):
    """erode_valid(valid, size, edge_size) of a raster of `shape`, for the pixels at `location`
    only, from `grown`: its C-ordered bool validity over halo_window(location)
    (`grown_location`), eroded in place. Returns the window's pixels, C-ordered (a copy, or a
    view of `grown` where the window's rows are whole rows of it)."""
    (y0, y1), (x0, x1) = location
    (top, _), (left, _) = grown_location
    eroded = erode_valid_in_place(grown, size, 0)
    window = np.ascontiguousarray(eroded[y0 - top:y1 - top, x0 - left:x1 - left])
    return clear_edge_band(window, edge_size, shape, location)


# Dilated intervals built and swept at once, and pixels painted at once: they bound the
# erosion's working memory (roughly 100 bytes an interval, 16 a pixel, so a few hundred MB)
# whatever the radius and the number of invalid runs. Painting False is idempotent, so the
# batches are simply applied one after another.
INTERVAL_BUDGET = 1 << 21
PIXEL_BUDGET = 1 << 23
MIN_RUNS_A_THREAD = 1 << 14  # fewer invalid runs are painted in one batch: a thread would cost more


def _clear_dilated(eroded, rows, starts, ends, radius: int, xp):
    """Set to False every pixel within disk(radius) of an invalid run (given as runs, in
    row-major order), a batch of runs at a time so that a bounded number of dilated intervals
    and painted pixels are held at once (INTERVAL_BUDGET, PIXEL_BUDGET). On the host the
    batches are painted in the threads host_pass() grants, the budgets shared between them:
    painting only ever writes False, so batches whose rings meet give the same pixels in any
    order."""
    with host_pass() if xp is np else contextlib.nullcontext(1) as threads:
        height, width = eroded.shape
        stride = width + 1  # one unused column per row, so intervals of two rows never touch
        dys = xp.arange(-radius, radius + 1, dtype=xp.int64)
        halves = xp.asarray(disk_half_widths(radius), dtype=xp.int64)
        if rows.size < MIN_RUNS_A_THREAD * 2:
            threads = 1
        per_batch = max(1, INTERVAL_BUDGET // (2 * radius + 1) // threads)
        if threads > 1:
            per_batch = min(per_batch, -(-int(rows.size) // threads))
        # Batch bounds and the original runs in the rows each batch reaches, found on the host at once.
        firsts = list(range(0, int(rows.size), per_batch))
        lasts = [min(first + per_batch, int(rows.size)) - 1 for first in firsts]
        reach = xp.searchsorted(rows, xp.concatenate([rows[xp.asarray(firsts)] - radius,
                                                      rows[xp.asarray(lasts)] + radius + 1]))
        reach = [int(index) for index in reach.tolist()]

        def paint(number: int) -> None:
            batch = slice(firsts[number], lasts[number] + 1)
            # One row of intervals per dy: each row is in ascending order, as the runs are.
            target = rows[None, batch] + dys[:, None]
            inside = target >= 0
            inside &= target < height
            base = (target * stride)[inside]
            del target
            lows = base + xp.maximum(starts[None, batch] - halves[:, None], 0)[inside]
            highs = base + xp.minimum(ends[None, batch] + halves[:, None], width)[inside]
            del base, inside
            near = slice(reach[number], reach[len(firsts) + number])
            _paint_covered(eroded, lows, highs, rows[near], starts[near], ends[near], stride, xp,
                           PIXEL_BUDGET // threads)

        each_in_threads(paint, list(range(len(firsts))), threads)


def _paint_covered(eroded, lows, highs, rows, starts, ends, stride: int, xp, pixel_budget: int = PIXEL_BUDGET):
    """Set to False the pixels some interval [low, high) covers (positions row * stride + column)
    that no original invalid run (rows, starts, ends) covers: those are False already. Pixels
    are painted `pixel_budget` at a time."""
    width = eroded.shape[1]
    # Sweep over interval ends: a stretch is newly invalid where some dilated interval
    # covers it and no original invalid run does.
    # (Within a group of equal positions the order of the steps does not matter: only the
    # group's last entry can start a stretch, and its sums include the whole group.)
    original = rows * stride
    if xp is np:
        # Position and kind of step (0 dilated start, 1 dilated end, 2 original start, 3
        # original end) in one key: a sort of values, of a few dozen ascending sequences
        # (one per dy, as _clear_dilated builds them), which the stable sort (timsort) merges.
        keys = np.concatenate([lows << 2, (highs << 2) | 1, ((original + starts) << 2) | 2,
                               ((original + ends) << 2) | 3])
        del lows, highs, original
        keys.sort(kind="stable")
        # One running sum counts both: the dilated intervals in its low 32 bits, the original
        # run (0 or 1: they never overlap) above them.
        depth = np.cumsum(np.array([1, -1, 1 << 32, -(1 << 32)], dtype=np.int64)[(keys & 3).astype(np.intp)])
        positions = keys >> 2
        del keys
        lengths = np.diff(positions)
        paint = depth[:-1] > 0
        paint &= depth[:-1] < (1 << 32)
        paint &= lengths > 0
        del depth
    else:
        positions = xp.concatenate([lows, highs, original + starts, original + ends])
        dilated_step = xp.concatenate([xp.ones(lows.size, dtype=xp.int8), xp.full(highs.size, -1, dtype=xp.int8),
                                       xp.zeros(2 * rows.size, dtype=xp.int8)])
        original_step = xp.concatenate([xp.zeros(lows.size + highs.size, dtype=xp.int8),
                                        xp.ones(rows.size, dtype=xp.int8), xp.full(rows.size, -1, dtype=xp.int8)])
        del lows, highs, original
        order = xp.argsort(positions, kind="stable")
        positions = positions[order]
        covered = xp.cumsum(dilated_step[order], dtype=xp.int64) > 0
        in_original = xp.cumsum(original_step[order], dtype=xp.int64) > 0
        del order, dilated_step, original_step
        lengths = xp.diff(positions)
        paint = covered[:-1] & ~in_original[:-1] & (lengths > 0)
        del covered, in_original
    seg_starts, seg_lengths = positions[:-1][paint], lengths[paint]
    del positions, lengths, paint
    flat_starts = (seg_starts // stride) * width + seg_starts % stride
    # Segments lie within a row (at most `width` pixels): paint them in groups of about
    # `pixel_budget` pixels, so the flat indices never grow with the area to clear.
    done = xp.cumsum(seg_lengths)
    total = int(done[-1]) if done.size else 0
    cuts = xp.searchsorted(done, xp.arange(pixel_budget, total, pixel_budget, dtype=xp.int64), side="right")
    bounds = [0] + [int(cut) for cut in cuts.tolist()] + [int(done.size)]
    flat = flat_view(eroded)
    for low, high in zip(bounds[:-1], bounds[1:]):
        if high > low:
            flat[expand_ranges(flat_starts[low:high], seg_lengths[low:high], xp)] = False


# how the probabilities were given (after PROBABILITY_SCALES' "auto" was resolved): 0..1, or DARTS' uint8 percent
RESOLVED_SCALES = tuple(scale for scale in PROBABILITY_SCALES if scale != "auto")


def above_threshold(probabilities, threshold: float, scale: str = "fraction"):
    """The pixels that pass `threshold` (NaN never): `p > threshold` for probabilities, and for
    probabilities decoded from DARTS' uint8 percent v (as v / 100 in their float type) the
    contract's `v >= 100 * threshold`, because v stands for [v/100, (v+1)/100): a pixel DARTS
    stored as 50 passes 0.5, as it did when DARTS binarized it. Compared as v / 100 against
    ceil(100 t) / 100, computed in the same float type, which keeps the order of the integers."""
    if scale == "percent":
        kind = probabilities.dtype.type
        return probabilities >= kind(percent_limit(threshold)) / kind(100)
    return probabilities > threshold


def percent_limit(threshold: float) -> int:
    """The smallest DARTS percent v that passes `threshold` (v >= 100 * t): ceil(100 t), 0..100
    for t in [0, 1]. Decoded, v / 100 in float32 is strictly increasing in v (steps of 0.01,
    far above its rounding), so above_threshold's `v / 100 >= ceil(100 t) / 100` holds exactly
    where `v >= ceil(100 t)` does: stored percent (0..100, 255 = NaN) is thresholded as the
    integers `v + 1 > limit` in uint8, where 255 wraps to 0 and never passes."""
    return math.ceil(100 * threshold)


def stored_percent_above(stored, threshold: float, xp=np):
    """above_threshold(percent_lookup()[stored], threshold, "percent") of uint8 percent as
    stored, in uint8 (tests/test_core_percent.py checks every value and threshold)."""
    return xp.add(stored, xp.uint8(1)) > percent_limit(threshold)


def excluded_too_much(excluded_pixels, sizes, max_share: float):
    """Objects with more than `max_share` of their pixels excluded (0: any excluded pixel), from
    their excluded and total pixel counts: DARTS' earlier pipeline dropped a polygon with more
    than 20 % of it in water."""
    return excluded_pixels > max_share * sizes


def binarize_array(probabilities, threshold: float, min_object_size: int, valid, size_connectivity: int = 8, xp=np,
                   counts: dict | None = None, *, excluded=None, boundary: str = "remove", scale: str = "fraction",
                   max_excluded_share: float = 0.0):
    """Threshold, drop 8-connected objects touching invalid pixels, drop objects meeting the
    exclusion mask, drop small objects.

    `probabilities` is float (NaN = no object), `scale` says whether it was decoded from DARTS'
    percent (see above_threshold); `valid` and `excluded` (None: no exclusion)
    are bool. Objects with more than `max_excluded_share` of their pixels excluded (0: any) are
    removed whole. `boundary="clip"` (share 0 only) cuts objects at the invalid pixels and at
    the excluded ones instead of removing them whole; the size filter then sees what is left.
    Object sizes are counted with `size_connectivity` (8, or 4 as upstream does).
    `counts`, if given, receives the number of `objects` above the threshold, of those
    `removed_at_boundary`, (with an exclusion mask) `removed_excluded` and of those
    `removed_too_small` (in size_connectivity components). An object both touching invalid
    pixels and excluded counts as removed at the boundary. In clip mode, `removed_excluded`
    counts the objects lying wholly in the excluded area (nothing of them is left).
    """
    objects = xp.ascontiguousarray(above_threshold(probabilities, threshold, scale))  # runs are painted in flat order
    return binarize_thresholded(objects, min_object_size, valid, size_connectivity, xp, counts, excluded=excluded,
                                boundary=boundary, max_excluded_share=max_excluded_share)


def binarize_thresholded(objects, min_object_size: int, valid, size_connectivity: int = 8, xp=np,
                         counts: dict | None = None, *, excluded=None, boundary: str = "remove",
                         max_excluded_share: float = 0.0):
    """binarize_array after the threshold: `objects` (a C-ordered bool image of the pixels that
    passed it, which is edited in place and returned) without the objects it removes."""
    if boundary == "clip":
        objects &= valid
    rows, starts, ends = find_runs(objects, xp)
    tally = counts if counts is not None else {}
    tally.update(objects=0, removed_at_boundary=0, removed_too_small=0)
    if excluded is not None:
        tally["removed_excluded"] = 0
    if rows.size == 0:
        return objects
    labels, count = run_components(rows, starts, ends, 8, xp)
    tally["objects"] = count

    width = objects.shape[1]
    removed = components_with_pixels(_pixels_where(objects, valid, False, xp), rows, starts, width, labels, count, xp)
    tally["removed_at_boundary"] = int(removed.sum())
    if excluded is not None:
        if boundary == "remove":
            sizes = xp.bincount(labels, weights=ends - starts, minlength=count)
            inside = count_pixels_in_components(_pixels_where(objects, excluded, True, xp), rows, starts, width, labels,
                                                count, xp)
            lost = excluded_too_much(inside, sizes, max_excluded_share)
        else:  # clip: lost only when no pixel outside the exclusion is left
            lost = ~components_with_pixels(_pixels_where(objects, excluded, False, xp), rows, starts, width, labels,
                                           count, xp)
        lost &= ~removed
        tally["removed_excluded"] = int(lost.sum())
        removed |= lost
    keep = ~removed[labels]
    relabel = size_connectivity != 8
    if excluded is not None and boundary == "clip":
        # Cut the excluded pixels out; sizes are those of what is left, in new runs.
        if not bool(keep.all()):
            clear_runs(objects, rows[~keep], starts[~keep], ends[~keep], xp)
        objects &= ~excluded
        rows, starts, ends = find_runs(objects, xp)
        keep, relabel = xp.ones(rows.size, dtype=bool), True

    if min_object_size > 1:
        if relabel:
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


def _pixels_where(objects, other, keep_other: bool, xp):
    """Flat indices of the pixels of `objects` set (`keep_other`) or not set in `other` (both
    bool): strip by strip on the host, with no full-tile temporary."""
    if xp is np and isinstance(other, np.ndarray) and other.dtype == bool:
        return host_pixels_where(objects, other, keep_other)
    return xp.flatnonzero(objects & (other if keep_other else ~other))
