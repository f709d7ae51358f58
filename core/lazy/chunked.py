"""Rasters larger than memory: the core's rules composed chunk by chunk on Dask.

The kernels are the in-memory core's (postprocess.py, runs.py), so every chunking gives the
same bytes as one array in memory:

- Erosion: each chunk is eroded with a halo of the disk radius (dask's `map_overlap`, no
  padding beyond the raster, whose outside counts as valid, as in memory); the edge band is
  placed by global position, so it lies at the raster's edges only. (A quality mask file read
  block by block is eroded as it is read instead, each window once with its halo:
  blockwise.ErodedQualityWindows, with the same kernels.)
- Objects, in two passes. Pass 1 labels each chunk's objects on its own (row runs) and keeps
  a small summary: per label its size, whether it touches an invalid pixel, its first pixel,
  and the labels along the chunk's four sides. `resolve` joins labels that touch across chunk
  sides and corners into objects and decides, per chunk label, whether it is kept. Pass 2
  labels each chunk again and paints the kept labels. Each pass computes a chunk's inputs
  inside its own task (ChunkRecipe), so no chunk is held in memory between the passes or
  waits for its consumer.

Memory: a few chunks (with halos) plus the summaries: a few numbers per object and the labels
along the chunks' sides, so they grow with the number of objects, not with the raster's area.
Everything returned is lazy: the caller decides when and where to compute (local scheduler or
a dask.distributed cluster).
No QGIS import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from ..kernels.checks import check_probabilities, check_quality_mask
from ..kernels.devices import to_host
from ..kernels.encodings import checked_stored_percent, decode_stored_percent, stored_percent_layer
from ..kernels.postprocess import (
    above_threshold,
    clear_edge_band,
    erode_valid,
    excluded_too_much,
    stored_percent_above,
)
from ..kernels.runs import (
    components_with,
    expand_ranges,
    find_runs,
    flat_view,
    pixels_in_components,
    repeat_index,
    run_components,
    runs_of_pixels,
)

# -- kernels on one chunk (numpy) -------------------------------------------------------------

def checked_probabilities(block, name: str = "probabilities"):
    """The chunk, after the in-memory core's check that it lies in [0, 1] (NaN allowed): raised
    when the caller computes."""
    check_probabilities(name, block, np)
    return block


def valid_of_quality(block, level: int):
    """quality >= level, after the in-memory core's check that the chunk holds 0, 1 or 2 only."""
    check_quality_mask("quality_data_mask", block, np)
    return block >= level


def edge_band(block, edge_size: int, shape, block_info=None):
    """Clear the pixels of this chunk that lie within `edge_size` of the raster's own edges."""
    if edge_size <= 0:
        return block
    return clear_edge_band(block.copy(), edge_size, shape, block_info[0]["array-location"])


@dataclass
class Labels:
    """One chunk's objects labelled with one connectivity, from its row runs."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    labels: np.ndarray  # per run, 0..count-1
    count: int
    shape: tuple

    @classmethod
    def of(cls, objects, connectivity: int) -> "Labels":
        objects = np.ascontiguousarray(objects)
        rows, starts, ends = find_runs(objects)
        labels, count = run_components(rows, starts, ends, connectivity)
        return cls(rows, starts, ends, labels, count, objects.shape)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, weights=self.ends - self.starts, minlength=self.count).astype(np.int64)

    def sides(self) -> dict[str, np.ndarray]:
        """The label of each pixel along the chunk's four sides (-1: background)."""
        height, width = self.shape
        result = {}
        for side, selected in (("top", self.rows == 0), ("bottom", self.rows == height - 1)):
            line = np.full(width, -1, np.int64)
            lengths = (self.ends - self.starts)[selected]
            line[expand_ranges(self.starts[selected], lengths)] = self.labels[selected][repeat_index(lengths)]
            result[side] = line
        for side, selected in (("left", self.starts == 0), ("right", self.ends == width)):
            line = np.full(height, -1, np.int64)
            line[self.rows[selected]] = self.labels[selected]
            result[side] = line
        return result

    def first_pixels(self, origin, raster_width: int) -> np.ndarray:
        """Global flat index of each label's first pixel (runs are in row-major order)."""
        first_run = np.unique(self.labels, return_index=True)[1]
        return (self.rows[first_run] + origin[0]) * raster_width + origin[1] + self.starts[first_run]

    def having(self, marked) -> np.ndarray:
        """Per label, whether any of its pixels is set in `marked` (a bool chunk set only on objects)."""
        return components_with(marked, self.rows, self.starts, self.labels, self.count)

    def parts(self, part: "Labels") -> Summary:
        """The sizes summary of `part`, a labelling of a subset of these objects' pixels, with the
        label here of the object each of its components lies in (`parent`)."""
        first_run = np.unique(part.labels, return_index=True)[1]
        pixels = part.rows[first_run] * self.shape[1] + part.starts[first_run]
        parent = self.labels[runs_of_pixels(self.rows, self.starts, self.shape[1], pixels)]
        return Summary(part.count, part.sizes(), part.sides(), parent=parent)

    def paint(self, values) -> np.ndarray:
        """A chunk raster with each run's pixels set to the value of its label (`values`, one per
        label: True for the kept ones, or object numbers); background 0."""
        image = np.zeros(self.shape, dtype=values.dtype)
        if self.count:
            lengths = self.ends - self.starts
            flat = expand_ranges(self.rows * self.shape[1] + self.starts, lengths)
            flat_view(image)[flat] = values[self.labels][repeat_index(lengths)]
        return image


@dataclass
class Summary:
    """What pass 1 keeps of one labelling of one chunk."""

    count: int
    sizes: np.ndarray
    sides: dict
    touching: np.ndarray | None = None  # per label: has a pixel where the mask is invalid
    excluded: np.ndarray | None = None  # per label: its number of excluded pixels
    outside: np.ndarray | None = None  # per label: has a pixel that is not excluded
    parent: np.ndarray | None = None  # per label: the label of the 8-connected object it is part of
    first: np.ndarray | None = None  # per label: global flat index of its first pixel


@dataclass
class ChunkSummary:
    objects: Summary  # 8-connected objects
    sizes: Summary | None = None  # the components whose sizes are filtered, when not the objects


def summarize(objects, valid, size_connectivity: int = 8, excluded=None, boundary: str = "remove") -> ChunkSummary:
    """Pass 1 on one chunk: its 8-connected objects (whether they touch invalid or excluded
    pixels) and, when sizes are not those of the objects (4-connectivity, or objects cut at an
    exclusion in clip mode), the components whose sizes are filtered, with what `resolve`
    needs to join them across chunks."""
    objects = np.ascontiguousarray(to_host(objects))
    labels = Labels.of(objects, 8)
    touching = np.zeros(labels.count, bool)
    if valid is not None:
        touching = labels.having(objects & ~to_host(valid))
    summary = ChunkSummary(Summary(labels.count, labels.sizes(), labels.sides(), touching=touching))
    if excluded is not None:
        excluded = to_host(excluded)
        summary.objects.excluded = pixels_in_components(objects & excluded, labels.rows, labels.starts, labels.labels,
                                                        labels.count)
        summary.objects.outside = labels.having(objects & ~excluded)
    if excluded is not None and boundary == "clip":
        summary.sizes = labels.parts(Labels.of(objects & ~excluded, size_connectivity))
    elif size_connectivity == 4:
        small = Labels.of(objects, 4)
        parent = np.zeros(small.count, np.int64)
        # 4-connected runs are 8-connected too, and both labellings see the same runs.
        parent[small.labels] = labels.labels
        summary.sizes = Summary(small.count, small.sizes(), small.sides(), parent=parent)
    return summary


def paint_kept(objects, keep, connectivity: int):
    """Pass 2 on one chunk: the chunk's objects whose labels `keep` marks."""
    return Labels.of(to_host(objects), connectivity).paint(keep)


# -- the global step ----------------------------------------------------------------------------

def _touching_pairs(a, b, connectivity: int):
    """Label pairs (a[x], b[x + d]) of two adjacent lines of pixels that are neighbours."""
    pairs = []
    n = a.size
    for d in ((0,) if connectivity == 4 else (-1, 0, 1)):
        left, right = a[max(0, -d): n - max(0, d)], b[max(0, d): n - max(0, -d)]
        both = (left >= 0) & (right >= 0)
        pairs.append((left[both], right[both]))
    return pairs


def join_labels(summaries, connectivity: int):
    """(global object per chunk label, offsets, number of objects) for one labelling of a
    grid of chunk summaries: labels that touch across chunk sides are one object."""
    counts = np.array([[s.count for s in row] for row in summaries], np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts.ravel())]).astype(np.int64)
    grid = offsets[:-1].reshape(counts.shape)

    def line(i, j, side):
        values = summaries[i][j].sides[side]
        return np.where(values >= 0, values + grid[i, j], -1)

    n_rows, n_cols = counts.shape
    pairs = []
    for i in range(n_rows - 1):
        pairs += _touching_pairs(np.concatenate([line(i, j, "bottom") for j in range(n_cols)]),
                                 np.concatenate([line(i + 1, j, "top") for j in range(n_cols)]), connectivity)
    for j in range(n_cols - 1):
        pairs += _touching_pairs(np.concatenate([line(i, j, "right") for i in range(n_rows)]),
                                 np.concatenate([line(i, j + 1, "left") for i in range(n_rows)]), connectivity)
    total = int(offsets[-1])
    sources = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
    targets = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
    graph = scipy.sparse.coo_matrix((np.ones(sources.size, np.int8), (sources, targets)), shape=(total, total))
    count, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return component.astype(np.int64), offsets, int(count)


def _gather(summaries, get):
    return np.concatenate([get(s) for row in summaries for s in row]) if summaries else np.zeros(0)


def _per_chunk(values, offsets, summaries):
    """Per-label values of all chunks (flat, row-major) split back into a grid of per-chunk arrays."""
    n_cols = len(summaries[0]) if summaries else 0
    return [[values[offsets[i * n_cols + j]: offsets[i * n_cols + j + 1]] for j in range(n_cols)]
            for i in range(len(summaries))]


def _numbering(summaries, connectivity: int):
    """(object of each chunk label, offsets, count, number 1..count of each object in row-major
    order of its first pixel, as in memory) of a grid of summaries with `first` pixels."""
    component, offsets, count = join_labels(summaries, connectivity)
    first = np.full(count, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, component, _gather(summaries, lambda s: s.first))
    number = np.empty(count, np.int64)
    number[np.argsort(first, kind="stable")] = np.arange(1, count + 1)
    return component, offsets, count, number


@dataclass
class Resolution:
    """The global decision: per chunk, which of its labels are kept; and the object counts."""

    keep: list  # keep[i][j]: bool per label of chunk (i, j), in the labelling pass 2 uses
    connectivity: int  # the labelling pass 2 uses
    counts: dict = field(default_factory=dict)


def _any_of(component, count: int, flags) -> np.ndarray:
    """Per object: whether any of its chunk labels has the flag."""
    result = np.zeros(count, bool)
    result[component[flags.astype(bool)]] = True
    return result


def resolve(summaries, min_object_size: int, size_connectivity: int = 8, exclusion: str | None = None,
            max_excluded_share: float = 0.0) -> Resolution:
    """Which chunk labels are kept: objects touching no invalid pixel anywhere, meeting the
    exclusion as binarize_array's `boundary` says (`exclusion`: None, "remove" or "clip"), and
    of at least `min_object_size` pixels over all chunks (counted with `size_connectivity`).
    Counts as binarize_array fills them."""
    component, offsets, count = join_labels([[s.objects for s in row] for row in summaries], 8)
    touching = _any_of(component, count, _gather(summaries, lambda s: s.objects.touching))
    counts = {"objects": count, "removed_at_boundary": int(touching.sum()), "removed_too_small": 0}
    removed = touching
    if exclusion is not None:
        if exclusion == "remove":
            excluded = np.bincount(component, weights=_gather(summaries, lambda s: s.objects.excluded), minlength=count)
            sizes = np.bincount(component, weights=_gather(summaries, lambda s: s.objects.sizes), minlength=count)
            lost = excluded_too_much(excluded, sizes, max_excluded_share)
        else:  # clip: lost when no pixel outside the exclusion is left
            lost = ~_any_of(component, count, _gather(summaries, lambda s: s.objects.outside))
        lost &= ~touching
        counts["removed_excluded"] = int(lost.sum())
        removed = touching | lost
    filter_sizes = min_object_size > 1
    labelling = size_connectivity if filter_sizes else 8
    if exclusion == "clip" or (filter_sizes and size_connectivity == 4):
        sizes_of = [[s.sizes for s in row] for row in summaries]
        small_component, small_offsets, small_count = join_labels(sizes_of, labelling)
        parent = np.concatenate([s.sizes.parent + offsets[k] for k, s in enumerate(s for row in summaries for s in row)])
        gone = np.zeros(small_count, bool)
        gone[small_component] = removed[component[parent]]
        too_small = np.zeros(small_count, bool)
        if filter_sizes:
            sizes = np.bincount(small_component, weights=_gather(sizes_of, lambda s: s.sizes), minlength=small_count)
            too_small = ~gone & (sizes < min_object_size)
            counts["removed_too_small"] = int(too_small.sum())
        keep, offsets, connectivity = ~(gone | too_small)[small_component], small_offsets, labelling
    else:
        if filter_sizes:
            sizes = np.bincount(component, weights=_gather(summaries, lambda s: s.objects.sizes), minlength=count)
            too_small = ~removed & (sizes < min_object_size)
            counts["removed_too_small"] = int(too_small.sum())
            removed = removed | too_small
        keep, connectivity = ~removed[component], 8
    return Resolution(_per_chunk(keep, offsets, summaries), connectivity, counts)


class Numbering(NamedTuple):
    """The objects of a chunked raster numbered as in memory (pass 1 of labelling)."""

    per_chunk: list  # per_chunk[i][j]: the object number (1..count) of each label of chunk (i, j)
    count: int  # the number of objects
    crossing: np.ndarray  # per object number (index number - 1): whether it spans several chunk labels


def object_numbers(summaries, connectivity: int = 8) -> Numbering:
    """The Numbering of a grid of `Summary` with `first` pixels: global object numbers 1..n in
    row-major order of each object's first pixel, as in memory."""
    component, offsets, count, number = _numbering(summaries, connectivity)
    crossing = np.zeros(count, bool)
    crossing[number - 1] = np.bincount(component, minlength=count) > 1
    return Numbering(_per_chunk(number[component], offsets, summaries), count, crossing)


def summarize_labels(binary, connectivity: int, origin, raster_width: int, row_areas=None) -> Summary:
    """Pass 1 for labelling: one chunk's components with their first pixels (and, given the
    area of a pixel in each row of the raster, their areas in `sizes`)."""
    labels = Labels.of(to_host(binary) != 0, connectivity)
    sizes = labels.sizes()
    if row_areas is not None:
        weights = (labels.ends - labels.starts) * row_areas[labels.rows + origin[0]]
        sizes = np.bincount(labels.labels, weights=weights, minlength=labels.count)
    return Summary(labels.count, sizes, labels.sides(), first=labels.first_pixels(origin, raster_width))


def areas_by_number(summaries):
    """The areas (summed `sizes`) of the objects of a grid of summaries, in object-number order."""
    component, _, count, number = _numbering(summaries, 8)
    areas = np.zeros(count)
    areas[number - 1] = np.bincount(component, weights=_gather(summaries, lambda s: s.sizes), minlength=count)
    return areas


def paint_numbers(binary, numbers, connectivity: int):
    """Pass 2 for labelling: the chunk's int32 label raster with global object numbers."""
    return Labels.of(to_host(binary) != 0, connectivity).paint(numbers.astype(np.int32))


# -- lazy compositions on dask arrays --------------------------------------------------------------

def dask_modules():
    try:
        import dask
        import dask.array as da
    except ImportError as error:  # only reached with dask input, so dask is there; kept for clarity
        raise ImportError("chunked processing needs dask: `pip install dask` or `apt install python3-dask`") from error
    return dask, da


class ChunkRecipe:
    """How to compute the (i, j) chunks of some dask arrays inside one task: their sub-graph,
    culled. A pass computes its chunks this way, from scratch, instead of depending on them as
    tasks: no chunk then waits in memory for its consumer (or for the other pass), whatever
    order dask's scheduler picks, and memory follows the chunk size."""

    def __init__(self, graph: dict, keys: list):
        self.graph, self.keys = graph, keys

    def __dask_tokenize__(self):
        return ("chunk-recipe", *self.keys)

    def compute(self) -> list:
        from dask.core import get

        return get(self.graph, self.keys)


def chunk_recipes(*arrays):
    """A ChunkRecipe per chunk (i, j) of equally chunked dask arrays, as a nested list."""
    dask, _ = dask_modules()
    from dask.optimization import cull

    arrays = dask.optimize(*arrays)
    graph = {}
    for array in arrays:
        graph.update(array.__dask_graph__())
    keys = [array.__dask_keys__() for array in arrays]
    return [[ChunkRecipe(cull(graph, [k[i][j] for k in keys])[0], [k[i][j] for k in keys])
             for j in range(len(keys[0][i]))] for i in range(len(keys[0]))]


def chunk_grid(chunks):
    """(i, j, (row, column) of the chunk's first pixel) of each chunk."""
    origins = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in chunks]
    return [(i, j, (int(origins[0][i]), int(origins[1][j]))) for i in range(len(chunks[0]))
            for j in range(len(chunks[1]))]


def _nested(items, chunks):
    """A flat row-major list of per-chunk items as rows of columns."""
    columns = len(chunks[1])
    return [items[row * columns:(row + 1) * columns] for row in range(len(chunks[0]))]


def _from_chunks(delayed_chunks, chunks, dtype):
    """One dask array from a flat row-major list of Delayed chunks."""
    _, da = dask_modules()
    shapes = [(rows, columns) for rows in chunks[0] for columns in chunks[1]]
    arrays = [da.from_delayed(chunk, shape, dtype=dtype, meta=np.zeros((0, 0), dtype))
              for chunk, shape in zip(delayed_chunks, shapes)]
    return da.block(_nested(arrays, chunks))


def erode_valid_lazy(valid, size: int, edge_size: int):
    """Lazy erode_valid of a dask bool array; the result has the input's chunks."""
    _, da = dask_modules()
    eroded = valid
    if size > 0:
        depth = {axis: min(size, valid.shape[axis]) for axis in (0, 1)}
        eroded = da.map_overlap(erode_valid, valid, depth=depth, boundary="none", dtype=bool, size=size, edge_size=0,
                                meta=np.zeros((0, 0), bool))
        if eroded.chunks != valid.chunks:
            eroded = eroded.rechunk(valid.chunks)
    if edge_size > 0:
        eroded = da.map_blocks(edge_band, eroded, edge_size, valid.shape, dtype=bool, meta=np.zeros((0, 0), bool))
    return eroded


def _compute_recipe(recipe):
    return recipe.compute()[0]


def independent_chunks(array):
    """The same lazy array, each chunk made by one task that computes it from its recipe: a
    consumer of the result (a GeoTIFF window, a sum) then holds no shared halo pieces or
    intermediate chunks while other chunks are computed."""
    dask, _ = dask_modules()
    recipes = chunk_recipes(array)
    tasks = [dask.delayed(_compute_recipe)(recipes[i][j]) for i, j, _ in chunk_grid(array.chunks)]
    return _from_chunks(tasks, array.chunks, array.dtype)


def _summarize_chunk(recipe, labelling: int, has_valid: bool, boundary: str):
    objects, *rest = recipe.compute()
    valid = rest.pop(0) if has_valid else None
    return summarize(objects, valid, labelling, rest[0] if rest else None, boundary)


def _paint_chunk(recipe, resolution, index):
    (objects,) = recipe.compute()
    return paint_kept(objects, resolution.keep[index[0]][index[1]], resolution.connectivity)


def binarize_lazy(objects, valid, min_object_size: int, size_connectivity: int, excluded=None,
                  boundary: str = "remove", max_excluded_share: float = 0.0):
    """Lazy binarize of the dask bool `objects` (the thresholding, already cut at the mask in
    clip mode) with the dask validity mask `valid` (or None) and the dask bool exclusion mask
    `excluded` (or None). Returns (dask bool array, Delayed counts dict). Each pass computes each
    chunk's inputs itself (ChunkRecipe)."""
    dask, _ = dask_modules()
    chunks = objects.chunks
    labelling = size_connectivity if min_object_size > 1 else 8
    inputs = [objects] + [mask.rechunk(chunks) for mask in (valid, excluded) if mask is not None]
    first = chunk_recipes(*inputs)
    summaries = _nested([dask.delayed(_summarize_chunk)(first[i][j], labelling, valid is not None, boundary)
                         for i, j, _ in chunk_grid(chunks)], chunks)
    exclusion = None if excluded is None else boundary
    resolution = dask.delayed(resolve)(summaries, min_object_size, size_connectivity, exclusion, max_excluded_share)
    # In clip mode the kept parts are those of the objects with the excluded pixels cut out.
    painted_source = objects & ~excluded.rechunk(chunks) if exclusion == "clip" else objects
    second = chunk_recipes(painted_source)
    painted = [dask.delayed(_paint_chunk)(second[i][j], resolution, (i, j)) for i, j, _ in chunk_grid(chunks)]
    return _from_chunks(painted, chunks, bool), resolution.counts


def _above(probabilities, threshold: float, name: str, scale: str):
    if stored_percent_layer(probabilities, scale):  # thresholded in uint8, as in memory
        return stored_percent_above(checked_stored_percent(probabilities, name), threshold)
    return above_threshold(checked_probabilities(probabilities, name), threshold, scale)


def _above_where_valid(probabilities, valid, threshold: float, name: str, scale: str):
    """The clip mode's objects: thresholding the probabilities NaN-masked to the extent."""
    return _above(probabilities, threshold, name, scale) & valid


def _objects_remove(probabilities, threshold, name, scale):
    _, da = dask_modules()
    return da.map_blocks(_above, probabilities, threshold, name, scale, dtype=bool, meta=np.zeros((0, 0), bool))


def _objects_clip(probabilities, valid, threshold, name, scale):
    _, da = dask_modules()
    return da.map_blocks(_above_where_valid, probabilities, valid, threshold, name, scale, dtype=bool,
                         meta=np.zeros((0, 0), bool))


def erode_mask_lazy(mask, size: int, edge_size: int):
    """Lazy erode_mask of a dask mask (non-zero = valid): uint8 0/1."""
    return independent_chunks(erode_valid_lazy(mask != 0, size, edge_size).astype(np.uint8))


def binarize_mask_lazy(probabilities, threshold: float, min_object_size: int, mask, size_connectivity: int,
                       name: str = "probs", excluded=None, boundary: str = "remove", scale: str = "fraction",
                       max_excluded_share: float = 0.0):
    """Lazy binarize of dask probabilities (`scale`: see postprocess.above_threshold) with a
    dask mask (non-zero = valid) and an optional dask bool exclusion mask."""
    valid = mask != 0
    objects = (_objects_remove(probabilities, threshold, name, scale) if boundary == "remove"
               else _objects_clip(probabilities, valid, threshold, name, scale))
    return binarize_lazy(objects, valid, min_object_size, size_connectivity, excluded, boundary, max_excluded_share)


def prepare_export_lazy(quality, layers: dict, thresholds, erosion: int, edge: int, min_size: int, level: int,
                        boundary: str, size_connectivity: int, excluded=None, scale: str = "fraction",
                        max_excluded_share: float = 0.0):
    """Lazy prepare_export on dask arrays, for each of `thresholds`: `layers` maps output suffix
    to (name, probabilities); `excluded` is a dask bool exclusion mask or None. Returns, per
    threshold, ({output name: dask array}, ...) and ({binarized name: Delayed counts}, ...);
    the extent and masked probabilities are the same arrays for all thresholds."""
    _, da = dask_modules()
    valid = da.map_blocks(valid_of_quality, quality, level, dtype=bool, meta=np.zeros((0, 0), bool))
    if level > 0:
        valid = erode_valid_lazy(valid, erosion, edge)
    shared = {"extent": independent_chunks(valid.astype(np.uint8))}
    results, counts = [dict(shared) for _ in thresholds], [{} for _ in thresholds]
    for suffix, (name, probabilities) in layers.items():
        probabilities = probabilities.rechunk(valid.chunks)
        decoded = probabilities
        if stored_percent_layer(probabilities, scale):  # decoded to float only for the masked probabilities
            decoded = probabilities.map_blocks(decode_stored_percent, name, dtype=np.float32,
                                               meta=np.zeros((0, 0), np.float32))
        masked = independent_chunks(da.where(valid, decoded, decoded.dtype.type(np.nan)))
        for result, count, threshold in zip(results, counts, thresholds):
            result[f"binarized_segmentation{suffix}"], count[f"binarized_segmentation{suffix}"] = binarize_mask_lazy(
                probabilities, threshold, min_size, valid, size_connectivity, name, excluded, boundary, scale,
                max_excluded_share)
            result[name] = masked
    return results, counts


def _summarize_labels_chunk(recipe, connectivity, origin, raster_width, row_areas=None):
    (binary,) = recipe.compute()
    return summarize_labels(binary, connectivity, origin, raster_width, row_areas)


def _paint_numbers_chunk(recipe, numbering, index, connectivity):
    (binary,) = recipe.compute()
    return paint_numbers(binary, numbering.per_chunk[index[0]][index[1]], connectivity)


def _label_summaries(binary, connectivity: int, row_areas=None):
    """Pass 1 of labelling a dask raster: a grid of Delayed `summarize_labels` of its chunks."""
    dask, _ = dask_modules()
    first = chunk_recipes(binary)
    summaries = [dask.delayed(_summarize_labels_chunk)(first[i][j], connectivity, origin, binary.shape[1], row_areas)
                 for i, j, origin in chunk_grid(binary.chunks)]
    return _nested(summaries, binary.chunks)


def numbered_objects(binary, connectivity: int = 8):
    """Pass 1 of labelling a dask raster: a Delayed Numbering (object_numbers)."""
    dask, _ = dask_modules()
    return dask.delayed(object_numbers)(_label_summaries(binary, connectivity), connectivity)


def label_objects_lazy(binary, connectivity: int = 8):
    """Lazy label_objects of a dask raster: (int32 dask labels, Delayed number of objects)."""
    dask, _ = dask_modules()
    numbering, second = numbered_objects(binary, connectivity), chunk_recipes(binary)
    painted = [dask.delayed(_paint_numbers_chunk)(second[i][j], numbering, (i, j), connectivity)
               for i, j, _ in chunk_grid(binary.chunks)]
    return _from_chunks(painted, binary.chunks, np.int32), numbering.count


def object_areas_lazy(binary, row_areas):
    """Lazy object_areas of a dask raster: a Delayed array of the 8-connected objects' areas
    in Region_ID order, from the area of a pixel in each row."""
    dask, _ = dask_modules()
    row_areas = dask.delayed(row_areas)  # one copy in the graph, not one per chunk
    return dask.delayed(areas_by_number)(_label_summaries(binary, 8, row_areas))
