"""Objects of a binary raster: 8-connected labels and per-object statistics.

Computed from row runs (see runs.py), so the cost follows the objects, not the tile.
Labels are numbered 1..n in row-major order of each object's first pixel, as
scikit-image's `label` numbers them. Runs on the host (numpy): the vector side is CPU work.
"""

from __future__ import annotations

import numpy as np

from .devices import to_host
from .runs import expand_ranges, find_runs, flat_view, repeat_index, run_components

STATISTICS = ("min", "max", "mean", "median", "std")


class Objects:
    """The runs of a binary raster with the object label (1..count) of each run."""

    def __init__(self, binary, connectivity: int = 8):
        binary = to_host(binary)
        # A bool raster is its own mask (no full-tile `!= 0` copy); anything else is compared.
        binary = np.ascontiguousarray(binary if binary.dtype == bool else binary != 0)
        self.shape = binary.shape
        self.rows, self.starts, self.ends = find_runs(binary)
        component, self.count = run_components(self.rows, self.starts, self.ends, connectivity)
        self.components = component  # scipy's numbering, as chunked.py's Labels have it
        # Components come numbered by scipy; renumber by first run (runs are row-major).
        first_run = np.unique(component, return_index=True)[1]
        renumber = np.empty(self.count, dtype=np.int64)
        renumber[np.argsort(first_run, kind="stable")] = np.arange(1, self.count + 1)
        self.run_labels = renumber[component] if self.count else np.zeros(0, np.int64)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(flat pixel index, label) of every object pixel, run by run."""
        width = self.shape[1]
        flat = expand_ranges(self.rows * width + self.starts, self.lengths)
        return flat, self.run_labels[repeat_index(self.lengths)]

    def label_image(self, dtype=None) -> np.ndarray:
        """The label raster: 0 background, 1..count objects (uint16 when they fit: half the
        memory and time of int32 on a full tile)."""
        image = np.zeros(self.shape, dtype=self.label_dtype(dtype))
        flat, labels = self.pixels()
        flat_view(image)[flat] = labels
        return image

    def boxes(self) -> np.ndarray:
        """(count, 4) int64: each object's first row, last row + 1, first column, last column + 1."""
        boxes = np.zeros((self.count, 4), np.int64)
        if not self.count:
            return boxes
        order = np.argsort(self.run_labels, kind="stable")  # row-major within each object
        firsts = np.searchsorted(self.run_labels[order], np.arange(1, self.count + 1))
        lasts = np.append(firsts[1:], order.size) - 1
        boxes[:, 0], boxes[:, 1] = self.rows[order[firsts]], self.rows[order[lasts]] + 1
        boxes[:, 2] = np.minimum.reduceat(self.starts[order], firsts)
        boxes[:, 3] = np.maximum.reduceat(self.ends[order], firsts)
        return boxes

    def window_images(self, dtype=None, max_windows: int | None = None, max_share: float = 1.0) -> list | None:
        """[((row0, row1, col0, col1), label raster of that window)]: windows of the raster that
        together hold every object whole, none holding a pixel of another window's objects
        (separate_windows), each with what label_image holds there, painted from the runs at
        once into one buffer (each image a view of it). None when there would be more than
        `max_windows` windows or they would cover more than `max_share` of the raster."""
        if not self.count:
            return []
        boxes = self.boxes()
        window_of_label, count = separate_windows(boxes)
        if max_windows is not None and count > max_windows:
            return None
        order = np.argsort(window_of_label, kind="stable")
        firsts = np.searchsorted(window_of_label[order], np.arange(count))
        bounds = np.stack([np.minimum.reduceat(boxes[order, 0], firsts), np.maximum.reduceat(boxes[order, 1], firsts),
                           np.minimum.reduceat(boxes[order, 2], firsts), np.maximum.reduceat(boxes[order, 3], firsts)],
                          axis=1)
        heights, widths = bounds[:, 1] - bounds[:, 0], bounds[:, 3] - bounds[:, 2]
        offsets = np.concatenate([[0], np.cumsum(heights * widths)])
        if offsets[-1] > max_share * self.shape[0] * self.shape[1]:
            return None
        window = window_of_label[self.run_labels - 1]
        buffer = np.zeros(int(offsets[-1]), dtype=self.label_dtype(dtype))
        flat = offsets[window] + (self.rows - bounds[window, 0]) * widths[window] + self.starts - bounds[window, 2]
        buffer[expand_ranges(flat, self.lengths)] = self.run_labels[repeat_index(self.lengths)]
        return [(tuple(int(value) for value in bounds[i]), buffer[offsets[i]:offsets[i + 1]].reshape(heights[i], widths[i]))
                for i in range(count)]

    def label_dtype(self, dtype=None):
        """uint16 when the labels fit (half the memory and time of int32 on a full tile)."""
        dtype = dtype or (np.uint16 if self.count <= np.iinfo(np.uint16).max else np.int32)
        if self.count > np.iinfo(dtype).max:
            raise ValueError(f"{self.count} objects do not fit into {np.dtype(dtype).name} labels")
        return dtype

    def npixel(self) -> np.ndarray:
        """Pixels per object (index 0 = label 1)."""
        return np.bincount(self.run_labels, weights=self.lengths, minlength=self.count + 1)[1:].astype(np.int64)

    def rows_weighted(self, row_weights: np.ndarray) -> np.ndarray:
        """Sum over each object's pixels of a per-row weight (e.g. the pixel area of that row)."""
        return np.bincount(self.run_labels, weights=self.lengths * row_weights[self.rows], minlength=self.count + 1)[1:]

    def table(self, values=None, lookup=None) -> dict[str, np.ndarray]:
        """Region_ID (1..count), npixel and, with `values`, their statistics per object: the
        columns every object table and layer starts with. `lookup`: see statistics."""
        table = {"Region_ID": np.arange(1, self.count + 1), "npixel": self.npixel()}
        if values is not None:
            table.update(self.statistics(values, lookup))
        return table

    def statistics(self, values, lookup=None) -> dict[str, np.ndarray]:
        """min, max, mean, median, std (population) of `values` inside each object.

        NaN values are left out; an object with no finite value gets NaN statistics.
        `lookup` (e.g. encodings.percent_lookup): integer `values` stand for lookup[value], looked
        up for the objects' pixels only (no float copy of the whole raster).
        """
        values = to_host(values)
        if values.shape != self.shape:
            raise ValueError(f"values have shape {values.shape}, the objects' raster {self.shape}")
        flat, labels = self.pixels()
        picked = values.reshape(-1)[flat]
        return statistics_of(picked if lookup is None else lookup[picked], labels, self.count)


def separate_windows(boxes: np.ndarray, cuts: int = 4) -> tuple[np.ndarray, int]:
    """(window number of each box, number of windows): the boxes (row0, row1, col0, col1; ends
    exclusive) grouped so that the groups' bounding windows are apart, by an XY cut of `cuts`
    levels (rows, then columns within each band of rows, ...): a group is split wherever none
    of its boxes spans a row (column) boundary. A group's window then holds no pixel of another
    group's boxes. Each level is one sort of all boxes, whatever the number of groups."""
    group = np.zeros(len(boxes), np.int64)
    for level in range(cuts):
        axis = 2 * (level % 2)
        low, high = boxes[:, axis], boxes[:, axis + 1]
        # Groups side by side on one axis: shifted by the group number times more than the extent.
        span = int(high.max(initial=0)) + 1
        low, high = group * span + low, group * span + high
        order = np.argsort(low, kind="stable")
        reach = np.maximum.accumulate(high[order])
        starts = np.ones(len(boxes), bool)
        starts[1:] = low[order][1:] >= reach[:-1]
        group[order] = np.cumsum(starts) - 1
    return group, int(group.max(initial=-1)) + 1


def statistics_of(picked: np.ndarray, labels: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """min, max, mean, median, std (population) of the values `picked` of objects 1..count
    (`labels`, one per value). NaN values are left out; an object without any gets NaN.
    Values are summed in ascending order within each object, so the result does not depend on
    the order they come in (one raster, or gathered from the blocks of a mosaic)."""
    finite = ~np.isnan(picked)
    picked, labels = _sort_by_label_then_value(picked[finite], labels[finite], picked.dtype)
    picked = picked.astype(np.float64)
    counts = np.bincount(labels, minlength=count + 1)[1:]
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    present = counts > 0
    result = {name: np.full(count, np.nan) for name in STATISTICS}
    f, n = firsts[present], counts[present]
    result["min"][present] = picked[f]
    result["max"][present] = picked[f + n - 1]
    result["median"][present] = (picked[f + (n - 1) // 2] + picked[f + n // 2]) / 2
    sums = np.bincount(labels, weights=picked, minlength=count + 1)[1:]
    mean = np.divide(sums, counts, out=np.full(count, np.nan), where=present)
    squares = np.bincount(labels, weights=(picked - mean[labels - 1]) ** 2, minlength=count + 1)[1:]
    result["mean"] = mean
    result["std"] = np.sqrt(np.divide(squares, counts, out=np.full(count, np.nan), where=present))
    return result


def _sort_by_label_then_value(values, labels, dtype):
    """Values grouped by label, ascending within each group (what a lexsort gives).

    For float32 values >= 0 the bit patterns order like the values, so label and value pack
    into one uint64 key and a plain sort does it, several times faster than a lexsort.
    """
    if dtype == np.float32 and (values.size == 0 or values.min() >= 0):
        bits = (values + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0 turns -0.0 into 0.0
        keys = np.sort((labels.astype(np.uint64) << np.uint64(32)) | bits)
        sorted_values = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
        return sorted_values, (keys >> np.uint64(32)).astype(np.int64)
    order = np.lexsort((values, labels))
    return values[order], labels[order]
