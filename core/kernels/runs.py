"""Row runs: the sparse representation the core computes on.

A run is a maximal horizontal stretch of True pixels in one row, stored as
(row, start, end) with `end` exclusive. Thaw-slump objects and invalid-data regions
cover a small share of a tile, so working on runs instead of pixels keeps the cost
proportional to the objects' outlines. Everything here uses only functions that numpy
and cupy share, so the CPU and the GPU run the same code; only the connected-components
step on the (small) run graph goes through scipy on the host.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from .devices import to_host
from .threads import over_row_ranges


def find_runs(image, xp=np):
    """(rows, starts, ends) of the True runs of a 2-D bool image, in row-major order."""
    if xp is np and isinstance(image, np.ndarray) and image.dtype == bool:
        return find_runs_host(image)
    height, width = image.shape
    flat = xp.ascontiguousarray(image).reshape(-1)
    # Flat positions where the value changes, except between one row's end and the next
    # row's start; runs that begin in the first column or end in the last are added.
    changes = xp.flatnonzero(flat[1:] != flat[:-1]) + 1
    changes = changes[changes % width != 0]
    row_starts = xp.flatnonzero(image[:, 0]) * width
    row_ends = (xp.flatnonzero(image[:, -1]) + 1) * width
    bounds = xp.sort(xp.concatenate([changes, row_starts, row_ends]).astype(xp.int64))
    # Bounds alternate start, end; a row-end that equals the next row's start is harmless.
    first, last = bounds[0::2], bounds[1::2]
    rows = first // width
    return rows, first - rows * width, last - rows * width


# Host images are scanned a strip of rows at a time, about this many pixels: the strip's
# temporaries stay in the CPU cache and are reused, instead of full-tile temporaries, which
# cost a page fault per 4 KiB the first time they are written.
STRIP_PIXELS = 1 << 20


def strip_rows(width: int) -> int:
    """Rows per strip of a host image `width` pixels wide (at least one)."""
    return max(1, STRIP_PIXELS // max(width, 1))


def find_runs_host(image: np.ndarray, invert: bool = False):
    """find_runs of a numpy bool image (of ~image with `invert`), a strip of rows at a time.

    Each strip is copied between two False columns, so each row's changes of value come in
    (start, end) pairs and the changes of the whole strip, in flat order, are its runs in
    row-major order: no sort and no full-tile temporary. Row ranges run in threads."""
    height, width = image.shape
    padded_width = width + 2
    step = max(1, STRIP_PIXELS // padded_width)

    def changes(part: slice) -> list:
        count = min(step, part.stop - part.start)
        padded = np.zeros((count, padded_width), dtype=bool)
        changed = np.empty((count, width + 1), dtype=bool)
        pieces = []
        for top in range(part.start, part.stop, step):
            strip = image[top:min(top + step, part.stop)]
            count = strip.shape[0]
            if invert:
                np.logical_not(strip, out=padded[:count, 1:-1])
            else:
                padded[:count, 1:-1] = strip
            np.not_equal(padded[:count, 1:], padded[:count, :-1], out=changed[:count])
            found = np.flatnonzero(changed[:count])
            if found.size:
                pieces.append(found + top * (width + 1))
        return pieces

    pieces = [piece for part in over_row_ranges(height, width, changes) for piece in part]
    bounds = np.concatenate(pieces).astype(np.int64, copy=False) if pieces else np.zeros(0, dtype=np.int64)
    first, last = bounds[0::2], bounds[1::2]
    rows = first // (width + 1)
    return rows, first - rows * (width + 1), last - rows * (width + 1)


def host_pixels_where(objects: np.ndarray, other: np.ndarray, keep_other: bool):
    """Flat indices, ascending, of the pixels set in the bool image `objects` and set
    (`keep_other`) or not set in the bool image `other`: flatnonzero(objects & other) or
    flatnonzero(objects & ~other), a strip of rows at a time (row ranges in threads)."""
    height, width = objects.shape
    step = strip_rows(width)

    def found(part: slice) -> list:
        marked = np.empty((min(step, part.stop - part.start), width), dtype=bool)
        pieces = []
        for top in range(part.start, part.stop, step):
            rows = slice(top, min(top + step, part.stop))
            strip, mask = objects[rows], other[rows]
            count = strip.shape[0]
            if keep_other:
                np.logical_and(strip, mask, out=marked[:count])
            else:  # a & ~b of bools is a > b
                np.greater(strip.view(np.uint8), mask.view(np.uint8), out=marked[:count])
            where = np.flatnonzero(marked[:count])
            if where.size:
                pieces.append(where + top * width)
        return pieces

    pieces = [piece for part in over_row_ranges(height, width, found) for piece in part]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.intp)


def expand_ranges(starts, lengths, xp=np):
    """Concatenation of arange(s, s + n) for each (s, n): the flat pixels of runs."""
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if starts.size == 0:
        return xp.zeros(0, dtype=xp.int64)
    steps = xp.ones(int(lengths.sum()), dtype=xp.int64)
    firsts = xp.cumsum(lengths)[:-1]
    # At each range's first pixel, jump from the previous range's last pixel.
    steps[firsts] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    steps[0] = starts[0]
    return xp.cumsum(steps)


def repeat_index(counts, xp=np):
    """Each index i repeated counts[i] times (numpy's repeat, which cupy lacks for arrays)."""
    ends = xp.cumsum(counts)
    total = int(ends[-1]) if ends.size else 0
    return xp.searchsorted(ends, xp.arange(total, dtype=xp.int64), side="right")


def runs_of_pixels(rows, starts, width: int, pixels, xp=np):
    """Index of the run holding each of the flat pixel indices `pixels` (all inside runs)."""
    return xp.searchsorted(rows * width + starts, pixels, side="right") - 1


def components_with(marked_pixels, rows, starts, labels, count: int, xp=np):
    """Per component (`labels` of the runs, 0..count-1), whether any of its pixels is set in
    `marked_pixels`, a bool image set only inside runs (e.g. objects & ~valid)."""
    return components_with_pixels(xp.flatnonzero(marked_pixels), rows, starts, marked_pixels.shape[1], labels, count,
                                  xp)


def components_with_pixels(pixels, rows, starts, width: int, labels, count: int, xp=np):
    """components_with for the flat indices `pixels` (ascending) of the marked pixels."""
    marked = xp.zeros(count, dtype=bool)
    if pixels.size:
        marked[labels[runs_of_pixels(rows, starts, width, pixels, xp)]] = True
    return marked


def pixels_in_components(marked_pixels, rows, starts, labels, count: int, xp=np):
    """Per component, how many of its pixels are set in `marked_pixels` (set only inside runs)."""
    return count_pixels_in_components(xp.flatnonzero(marked_pixels), rows, starts, marked_pixels.shape[1], labels,
                                      count, xp)


def count_pixels_in_components(pixels, rows, starts, width: int, labels, count: int, xp=np):
    """pixels_in_components for the flat indices `pixels` (ascending) of the marked pixels."""
    if not pixels.size:
        return xp.zeros(count, dtype=xp.int64)
    return xp.bincount(labels[runs_of_pixels(rows, starts, width, pixels, xp)], minlength=count)


def flat_view(image):
    """A 1-D view of a C-ordered image (reshape would silently copy any other layout)."""
    if not image.flags.c_contiguous:
        raise ValueError("internal error: flat writes need a C-contiguous image")
    return image.reshape(-1)


def clear_runs(image, rows, starts, ends, xp=np):
    """Set the pixels of the given runs to False (or 0), in place."""
    width = image.shape[1]
    flat_view(image)[expand_ranges(rows * width + starts, ends - starts, xp)] = 0


def run_components(rows, starts, ends, connectivity: int, xp=np):
    """Label runs by connected component: (labels per run, number of components).

    Runs in consecutive rows are connected when their pixels touch: overlapping columns
    for 4-connectivity, overlapping or diagonally adjacent columns for 8-connectivity.
    """
    n_runs = int(rows.size)
    if n_runs == 0:
        return xp.zeros(0, dtype=xp.int64), 0
    reach = 0 if connectivity == 8 else 1
    # Keys that order runs row-major; row stride > any column value, so rows never alias.
    stride = int(ends.max()) + 2
    end_keys = rows * stride + ends
    start_keys = rows * stride + starts
    below = (rows + 1) * stride
    # Runs j in the next row with end_j >= start_i + reach and start_j <= end_i - reach.
    first = xp.searchsorted(end_keys, below + starts + reach, side="left")
    stop = xp.searchsorted(start_keys, below + ends - reach, side="right")
    counts = xp.maximum(stop - first, 0)
    sources = repeat_index(counts, xp)
    targets = expand_ranges(first, counts, xp)
    graph = scipy.sparse.coo_matrix(
        (np.ones(int(sources.size), dtype=np.int8), (to_host(sources), to_host(targets))), shape=(n_runs, n_runs)
    )
    count, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return xp.asarray(labels.astype(np.int64)), int(count)
