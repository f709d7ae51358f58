"""Upstream's API (`erode_mask`, `binarize`, `prepare_export`) over the array algorithms.

Accepts xarray DataArrays/Datasets (coords, dims and attrs are kept), numpy arrays, cupy
arrays and dask arrays; results come back in the kind they came in. Dask-backed input gives
lazy dask-backed results (chunked.py): nothing is computed here, and the value checks run
when the caller computes. Every argument is checked first, so bad input raises a clear error
instead of a wrong result.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np

from ...definitions import BOUNDARY_MODES, LONG_NAMES, Progress
from ..kernels.checks import (
    CONNECTIVITIES,
    check_choice,
    check_level_fits_mask,
    check_probabilities,
    check_quality_level,
    check_quality_mask,
    check_raster,
    check_same_shape,
    check_share,
    check_size,
    check_threshold,
    require_variables,
)
from ..kernels.devices import (
    Backend,
    Device,
    array_module_of,
    dask_array,
    is_dask,
    is_dataarray,
    raw_array,
    resolve_device,
    validate_device,
)
from ..kernels.encodings import decode_stored_percent, percent_lookup, stored_percent_layer
from ..kernels.objects import Objects
from ..kernels.postprocess import (RESOLVED_SCALES, above_threshold, binarize_array, binarize_thresholded, erode_valid,
                                  erode_valid_in_place, percent_limit)
from ..kernels.runs import strip_rows
from ..kernels.threads import over_row_ranges

logger = logging.getLogger(__name__)



# Non-C-ordered host probabilities are copied into C-ordered strips in blocks of this many
# columns: a transposing copy a block at a time stays in the cache (numpy's copy of a whole
# Fortran-ordered strip runs several times slower).
_BLOCK_COLUMNS = 512


def _strip_height(values: np.ndarray, part: slice) -> int:
    """The most rows of a strip _c_strips gives of the rows `part` of `values`."""
    step = strip_rows(values.shape[1])
    if not values.flags.c_contiguous:
        step = max(128, step)  # a Fortran-ordered strip's columns span whole cache lines
    return max(1, min(step, part.stop - part.start))


def _c_strips(values: np.ndarray, part: slice):
    """(row slice, C-ordered strip of `values`) for every strip of the rows `part` of a 2-D
    host array (at most _strip_height rows): a view where the strip is C-ordered already, else
    a copy into one reused buffer."""
    width = values.shape[1]
    start, stop = part.start, part.stop
    step = _strip_height(values, part)
    if values.flags.c_contiguous:
        for top in range(start, stop, step):
            yield slice(top, min(top + step, stop)), values[top:min(top + step, stop)]
        return
    buffer = np.empty((min(step, stop - start), width), dtype=values.dtype)
    for top in range(start, stop, step):
        rows = slice(top, min(top + step, stop))
        strip = buffer[:rows.stop - top]
        for left in range(0, width, _BLOCK_COLUMNS):
            strip[:, left:left + _BLOCK_COLUMNS] = values[rows, left:left + _BLOCK_COLUMNS]
        yield rows, strip


def _scan_layer(name, probs: np.ndarray, valid: np.ndarray, thresholds, scale, mask: bool = True):
    """One pass over a host layer of probabilities, on the grid of `valid`: checks its values
    (raising as check_probabilities does), and returns the C-ordered bool image of the pixels
    above each threshold and the probabilities with NaN where `valid` is False (None unless
    `mask`). uint8 percent as stored is thresholded in uint8 (_scan_stored_percent). Row
    ranges run in threads (over_row_ranges), each with its own scratch strip."""
    if probs.dtype == np.uint8:
        return _scan_stored_percent(name, probs, valid, thresholds, mask)
    height, width = probs.shape
    nan = probs.dtype.type(np.nan)
    objects = [np.empty((height, width), dtype=bool) for _ in thresholds]
    masked = np.empty((height, width), dtype=probs.dtype) if mask else None

    def scan(part: slice) -> bool:
        """Whether every value of these rows is in range (the rows are written either way)."""
        scratch = np.empty((_strip_height(probs, part), width), dtype=bool)
        for rows, strip in _c_strips(probs, part):
            count = strip.shape[0]
            if np.less(strip, 0).any() or np.greater(strip, 1).any():
                return False
            for image, threshold in zip(objects, thresholds):
                image[rows] = above_threshold(strip, threshold, scale)
            if masked is None:
                continue
            np.copyto(masked[rows], strip)
            np.logical_not(valid[rows], out=scratch[:count])
            np.copyto(masked[rows], nan, where=scratch[:count])
        return True

    if not all(over_row_ranges(height, width, scan)):
        check_probabilities(name, probs, np)  # raises, with the whole layer's range
    return objects, masked


def _scan_stored_percent(name, stored: np.ndarray, valid: np.ndarray, thresholds, mask: bool = True):
    """_scan_layer of DARTS' uint8 percent as stored (0..100, 255 = no prediction): the same
    images and masked float32 probabilities as from its decoded floats, without a float copy
    of the layer unless `mask` asks for one. Each strip's v + 1 (255 wraps to 0) gives the
    check (at most 101) and every threshold (v + 1 > percent_limit(t), see percent_limit)."""
    height, width = stored.shape
    limits = [np.uint8(percent_limit(threshold)) for threshold in thresholds]
    objects = [np.empty((height, width), dtype=bool) for _ in thresholds]
    masked = np.empty((height, width), dtype=np.float32) if mask else None
    lookup = percent_lookup("fraction")
    nan = np.float32(np.nan)

    def scan(part: slice) -> bool:
        """Whether every value of these rows is a percent or 255."""
        count = _strip_height(stored, part)
        shifted, scratch = np.empty((count, width), dtype=np.uint8), np.empty((count, width), dtype=bool)
        for rows, strip in _c_strips(stored, part):
            count = strip.shape[0]
            plus = np.add(strip, np.uint8(1), out=shifted[:count])
            if plus.max() > 101:
                return False
            for image, limit in zip(objects, limits):
                np.greater(plus, limit, out=image[rows])
            if masked is None:
                continue
            np.take(lookup, strip, out=masked[rows], mode="clip")
            np.logical_not(valid[rows], out=scratch[:count])
            np.copyto(masked[rows], nan, where=scratch[:count])
        return True

    if not all(over_row_ranges(height, width, scan)):
        decode_stored_percent(stored, name)  # raises
    return objects, masked


# -- containers ---------------------------------------------------------------------------

def _like(template, result):
    """`result` in the container and array module of `template`."""
    module = array_module_of(raw_array(template) if is_dataarray(template) else template)
    if module is np and array_module_of(result) is not np:
        result = result.get()
    elif module is not np:
        result = module.asarray(result)
    if is_dataarray(template):
        return template.copy(data=result)
    return result


# -- public API ---------------------------------------------------------------------------

def erode_mask(mask, size: int, device: Device = "auto", edge_size: int | None = None):
    """Erode the valid area (non-zero) of `mask` by a disk of radius `size` and invalidate an
    `edge_size` band (default `size`; 0 = none) along the raster edges. Returns uint8 0/1."""
    size = check_size("size", size)
    edge_size = size if edge_size is None else check_size("edge_size", edge_size)
    if is_dask(mask):
        from ..lazy.chunked import erode_mask_lazy

        validate_device(device)
        check_raster("mask", dask_array(mask), "uib", "a bool or integer mask (non-zero = valid)")
        return _like_lazy(mask, erode_mask_lazy(dask_array(mask), size, edge_size))
    data = raw_array(mask)
    check_raster("mask", data, "uib", "a bool or integer mask (non-zero = valid)")
    backend = resolve_device(device)
    with backend.context():
        valid = backend.asarray(data) != 0
        eroded = erode_valid(valid, size, edge_size, backend.xp).astype(np.uint8)
    return _like(mask, eroded)


def binarize(probs, threshold: float, min_object_size: int, mask, device: Device = "auto", *, size_connectivity: int = 8,
             exclude=None, boundary: str = "remove", probability_scale: str = "fraction",
             max_excluded_share: float = 0.0):
    """Objects (`probs > threshold`, 8-connected) that touch no invalid pixel of `mask`, meet
    no non-zero pixel of `exclude` (optional) and have at least `min_object_size` pixels
    (counted with `size_connectivity`). `boundary="clip"` cuts objects at the invalid and
    excluded pixels instead of removing them whole. `probability_scale="percent"` says `probs`
    were decoded from DARTS' uint8 percent v (as v / 100): v passes when v >= 100 * threshold
    (semantics.md). With `exclude`, objects with more than `max_excluded_share` of their pixels
    excluded are removed (0, the default: any excluded pixel). Returns bool."""
    threshold = check_threshold(threshold)
    max_excluded_share = check_share("max_excluded_share", max_excluded_share, boundary)
    check_choice("probability_scale", probability_scale, RESOLVED_SCALES)
    min_object_size = check_size("min_object_size", min_object_size)
    check_choice("size_connectivity", size_connectivity, CONNECTIVITIES)
    check_choice("boundary", boundary, BOUNDARY_MODES)
    if is_dask(probs) or is_dask(mask) or is_dask(exclude):
        from ..lazy.chunked import binarize_mask_lazy

        validate_device(device)
        prob_data, mask_data = _as_dask(probs), _as_dask(mask, like=probs)
        check_raster("probs", prob_data, "f", "float probabilities in [0, 1] (NaN = no prediction)")
        check_raster("mask", mask_data, "uib", "a bool or integer mask (non-zero = valid)")
        check_same_shape(probs=prob_data, mask=mask_data)
        excluded = None
        if exclude is not None:
            excluded = _as_dask(exclude, like=probs)
            _check_exclusion(excluded, prob_data)
            excluded = excluded.rechunk(prob_data.chunks) != 0
        result, _ = binarize_mask_lazy(prob_data, threshold, min_object_size, mask_data.rechunk(prob_data.chunks),
                                       size_connectivity, excluded=excluded, boundary=boundary,
                                       scale=probability_scale, max_excluded_share=max_excluded_share)
        return _like_lazy(probs, result)
    prob_data, mask_data = raw_array(probs), raw_array(mask)
    backend = resolve_device(device)
    with backend.context():
        prob_data, mask_data = backend.asarray(prob_data), backend.asarray(mask_data)
        check_probabilities("probs", prob_data, backend.xp)
        check_raster("mask", mask_data, "uib", "a bool or integer mask (non-zero = valid)")
        check_same_shape(probs=prob_data, mask=mask_data)
        excluded = _excluded_on(backend, exclude, prob_data)
        result = binarize_array(prob_data, threshold, min_object_size, mask_data != 0, size_connectivity, backend.xp,
                                excluded=excluded, boundary=boundary, scale=probability_scale,
                                max_excluded_share=max_excluded_share)
    return _like(probs, result)


def _check_exclusion(exclude, like) -> None:
    check_raster("exclude", exclude, "uib", "a bool or integer mask (non-zero = excluded)")
    check_same_shape(probabilities=like, exclude=exclude)


def _excluded_on(backend: Backend, exclude, like):
    """The exclusion mask as bool on the backend's device (None: no exclusion)."""
    if exclude is None:
        return None
    data = backend.asarray(raw_array(exclude))
    _check_exclusion(data, like)
    return data != 0


def prepare_export(
    tile,
    bin_threshold: float = 0.5,
    mask_erosion_size: int = 10,
    min_object_size: int = 32,
    quality_level: int | str = 0,
    ensemble_subsets: Sequence[str] = (),
    device: Device = "auto",
    edge_erosion_size: int | None = None,
    *,
    boundary: str = "remove",
    size_connectivity: int = 8,
    exclude=None,
    progress: Progress | None = None,
    object_counts: dict | None = None,
    probability_scale: str = "fraction",
    max_excluded_share: float = 0.0,
):
    """DARTS' postprocessing of one tile: quality mask -> eroded extent -> masked and
    binarized probabilities (also for each ensemble subset).

    `tile` is an xarray Dataset or a mapping of arrays with `probabilities`,
    `quality_data_mask` and `probabilities-{subset}`; a new one of the same kind is
    returned with `extent` (uint8), `binarized_segmentation[-{subset}]` (bool) and the
    NaN-masked `probabilities[-{subset}]`. The input is never modified. `exclude`, if
    given, is a mask on the tile's grid (non-zero = excluded, e.g. water): objects meeting
    it are removed whole, or with `boundary="clip"` cut (see binarize). `progress`, if
    given, is called as progress(fraction, message) between steps; it may raise to cancel.
    `object_counts`, if given, is filled per binarized layer with the number of `objects`
    above the threshold, `removed_at_boundary`, `removed_excluded` (with `exclude`) and
    `removed_too_small` (for reports). `probability_scale="percent"`: the probabilities were
    decoded from DARTS' uint8 percent (see binarize), or are that uint8 percent as stored
    (0..100, 255 = no prediction; the masked layers come back as the float32 it decodes to).
    `max_excluded_share`: see binarize.
    """
    counts = [] if object_counts is not None else None
    (result,) = _prepare(tile, [bin_threshold], mask_erosion_size, min_object_size, quality_level, ensemble_subsets,
                         device, edge_erosion_size, boundary, size_connectivity, exclude, progress, counts,
                         probability_scale, max_excluded_share)
    if object_counts is not None:
        object_counts.update(counts[0])
    return result


def prepare_export_thresholds(tile, thresholds: Sequence[float], mask_erosion_size: int = 10, min_object_size: int = 32,
                              quality_level: int | str = 0, ensemble_subsets: Sequence[str] = (),
                              device: Device = "auto", edge_erosion_size: int | None = None, *,
                              boundary: str = "remove", size_connectivity: int = 8, exclude=None,
                              progress: Progress | None = None, object_counts: dict | None = None,
                              probability_scale: str = "fraction", max_excluded_share: float = 0.0,
                              masked_probabilities: bool = True) -> dict:
    """prepare_export for several thresholds at once: {threshold: the tile prepare_export
    returns for it}, the quality mask eroded once (in memory; block by block each pass
    recomputes its chunks anyway). `object_counts`, if given, is filled as
    {threshold: prepare_export's counts}. `masked_probabilities=False`: the tiles hold the
    probabilities as given instead of NaN-masked to the extent, which saves building a copy
    of each layer in memory (inside objects the two agree; lazy results are unchanged, their
    masked layers cost nothing unless computed)."""
    if isinstance(thresholds, (str, numbers.Real)) or len(thresholds) == 0:
        raise ValueError(f"thresholds must be a non-empty list of numbers, got {thresholds!r}")
    checked = [check_threshold(threshold) for threshold in thresholds]
    if len(set(checked)) < len(checked):
        raise ValueError(f"thresholds must differ, got {list(thresholds)!r}")
    counts = [] if object_counts is not None else None
    results = _prepare(tile, checked, mask_erosion_size, min_object_size, quality_level, ensemble_subsets, device,
                       edge_erosion_size, boundary, size_connectivity, exclude, progress, counts, probability_scale,
                       max_excluded_share, masked_probabilities)
    if object_counts is not None:
        object_counts.update(zip(checked, counts))
    return dict(zip(checked, results))


def _prepare(tile, thresholds, mask_erosion_size, min_object_size, quality_level, ensemble_subsets, device,
             edge_erosion_size, boundary, size_connectivity, exclude, progress, object_counts, scale, share=0.0,
             masked_probabilities=True):
    """One result tile per threshold (the extent and masked probabilities shared); appends
    each threshold's counts to `object_counts` (a list) when given. Without
    `masked_probabilities`, in memory the probabilities layers are left as given."""
    thresholds = [check_threshold(threshold) for threshold in thresholds]
    erosion = check_size("mask_erosion_size", mask_erosion_size)
    edge = erosion if edge_erosion_size is None else check_size("edge_erosion_size", edge_erosion_size)
    min_size = check_size("min_object_size", min_object_size)
    level = check_quality_level(quality_level)
    check_choice("boundary", boundary, BOUNDARY_MODES)
    check_choice("size_connectivity", size_connectivity, CONNECTIVITIES)
    check_choice("probability_scale", scale, RESOLVED_SCALES)
    share = check_share("max_excluded_share", share, boundary)
    validate_device(device)
    if isinstance(ensemble_subsets, str):
        raise TypeError("ensemble_subsets must be a list of subset names, not a string")
    layers = {None: "probabilities", **{s: f"probabilities-{s}" for s in ensemble_subsets}}
    require_variables(tile, ["quality_data_mask", *layers.values()])
    check_level_fits_mask(level, tile["quality_data_mask"])

    if is_dask(exclude) or any(is_dask(tile[name]) for name in ["quality_data_mask", *layers.values()]):
        return _prepare_export_lazy(tile, layers, thresholds, erosion, edge, min_size, level, boundary,
                                    size_connectivity, exclude, object_counts, scale, share)

    report = progress or (lambda fraction, message: None)
    backend = resolve_device(device)
    xp = backend.xp
    with backend.context():
        report(0.0, "Checking the quality mask")
        quality = backend.asarray(raw_array(tile["quality_data_mask"]))
        check_quality_mask("quality_data_mask", quality, xp)
        if xp is np:
            # The extent's bytes hold the validity mask as bool (0/1), eroded in place.
            extent = np.empty(quality.shape, dtype=np.uint8)
            valid = extent.view(bool)
            np.greater_equal(quality, level, out=valid)
        else:
            valid = quality >= level
        if level > 0:
            report(0.05, f"Eroding the quality mask (disk radius {erosion}, edge band {edge})")
            valid = erode_valid_in_place(valid, erosion, edge, xp) if xp is np else erode_valid(valid, erosion, edge, xp)
        del quality
        excluded = _excluded_on(backend, exclude, valid)
        if xp is np:
            results = [{"extent": extent if step == 0 else extent.copy()} for step in range(len(thresholds))]
        else:
            results = [{"extent": valid.astype(np.uint8)} for _ in thresholds]
        counts = [{} for _ in thresholds]

        for index, (subset, name) in enumerate(layers.items()):
            suffix = "" if subset is None else f"-{subset}"
            probs = backend.asarray(raw_array(tile[name]))
            stored = stored_percent_layer(probs, scale)  # DARTS' percent as stored (255: none)
            scanned = None
            if xp is np and isinstance(probs, np.ndarray) and probs.ndim == 2 and probs.shape == valid.shape:
                # On the host: one pass over the layer checks it, thresholds it and masks it.
                if not stored:
                    check_raster(name, probs, "f", "float probabilities in [0, 1] (NaN = no prediction)")
                scanned, masked = _scan_layer(name, probs, valid, thresholds, scale, masked_probabilities)
            else:
                if stored:
                    probs = decode_stored_percent(probs, name, xp)
                check_probabilities(name, probs, xp)
            check_same_shape(quality_data_mask=valid, **{name: probs})
            for step, threshold in enumerate(thresholds):
                detail = f" at threshold {threshold:g}" if len(thresholds) > 1 else ""
                report(0.2 + 0.8 * (index * len(thresholds) + step) / (len(layers) * len(thresholds)),
                       f"Binarizing {name}{detail}")
                layer_counts = counts[step][f"binarized_segmentation{suffix}"] = {}
                if scanned is not None:
                    binarized = binarize_thresholded(scanned[step], min_size, valid, size_connectivity, xp, layer_counts,
                                                     excluded=excluded, boundary=boundary, max_excluded_share=share)
                    scanned[step] = None
                else:
                    binarized = binarize_array(probs, threshold, min_size, valid, size_connectivity, xp, layer_counts,
                                               excluded=excluded, boundary=boundary, scale=scale,
                                               max_excluded_share=share)
                results[step][f"binarized_segmentation{suffix}"] = binarized
            if scanned is None and masked_probabilities:
                masked = xp.where(valid, probs, probs.dtype.type(np.nan))
            del probs
            if masked_probabilities:
                for result in results:
                    result[name] = masked
        report(1.0, "Done")
    if object_counts is not None:
        object_counts.extend(counts)
    return [_assemble(tile, result, backend) for result in results]


def _as_dask(value, like=None):
    """A dask array of `value` (chunked like `like` when it has to be wrapped)."""
    if is_dask(value):
        return dask_array(value)
    import dask.array as da

    data = raw_array(value)
    return da.from_array(data, chunks=dask_array(like).chunks if like is not None and is_dask(like) else "auto")


def _like_lazy(template, result):
    """A lazy `result` in the container of `template` (DataArray or plain dask array)."""
    return template.copy(data=result) if is_dataarray(template) else result


def _prepare_export_lazy(tile, layers, thresholds, erosion, edge, min_size, level, boundary, size_connectivity,
                         exclude, object_counts, scale, share):
    """_prepare on dask-backed tiles: lazy results, counts as dask Delayed values."""
    from ..lazy.chunked import prepare_export_lazy

    first = next(array for array in [*(tile[name] for name in ["quality_data_mask", *layers.values()]), exclude]
                 if is_dask(array))
    quality = _as_dask(tile["quality_data_mask"], like=first)
    check_raster("quality_data_mask", quality, "uib", "an integer quality mask (0 invalid, 1 low, 2 high quality)")
    probabilities = {}
    for subset, name in layers.items():
        suffix = "" if subset is None else f"-{subset}"
        probabilities[suffix] = (name, _as_dask(tile[name], like=first))
        if stored_percent_layer(probabilities[suffix][1], scale):  # as stored: its values checked per block
            check_raster(name, probabilities[suffix][1], "u", "DARTS' uint8 percent")
        else:
            check_raster(name, probabilities[suffix][1], "f", "float probabilities in [0, 1] (NaN = no prediction)")
        check_same_shape(quality_data_mask=quality, **{name: probabilities[suffix][1]})
    excluded = None
    if exclude is not None:
        excluded = _as_dask(exclude, like=first)
        _check_exclusion(excluded, quality)
        excluded = excluded != 0
    results, counts = prepare_export_lazy(quality, probabilities, thresholds, erosion, edge, min_size, level,
                                          boundary, size_connectivity, excluded, scale, share)
    if object_counts is not None:
        object_counts.extend(counts)
    return [_assemble(tile, result, None) for result in results]


# the long_name attribute of each variable prepare_export adds (upstream's)
VARIABLE_LONG_NAMES = {"extent": LONG_NAMES["extent"], "binarized_segmentation": LONG_NAMES["binarized"]}


def _assemble(tile, results: dict, backend: Backend | None):
    """A new tile of the input's kind with `results` added or replaced (backend None: the
    results are lazy dask arrays, kept lazy)."""
    like = _like if backend is not None else _like_lazy  # backend None: lazy dask results
    if not hasattr(tile, "data_vars"):  # a plain mapping (an xarray Dataset is one too)
        out = dict(tile)
        for name, array in results.items():
            out[name] = array if backend is None else _like(raw_array(tile["quality_data_mask"]), array)
        return out
    out = tile.copy()
    for name, array in results.items():
        template = tile[name] if name in tile else tile["quality_data_mask"]
        variable = like(template, array)
        base = name.split("-")[0]
        if base in VARIABLE_LONG_NAMES:
            variable.attrs = {"long_name": VARIABLE_LONG_NAMES[base]}
        out[name] = variable
    return out


def label_objects(binary, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """(int32 label raster, number of objects) of the non-zero pixels of `binary`.
    A dask array gives a lazy dask label raster and a dask Delayed count (chunked.py)."""
    if is_dask(binary):
        from ..lazy.chunked import label_objects_lazy

        labels, count = label_objects_lazy(dask_array(binary), connectivity)
        return _like_lazy(binary, labels), count
    objects = Objects(binary, connectivity)
    return objects.label_image(np.int32), objects.count


def object_statistics(binary, values=None) -> dict[str, np.ndarray]:
    """Region_ID, npixel and (with `values`) min/max/mean/median/std per 8-connected object.
    A dask `binary` gives a dask Delayed of the same table (chunked_polygons.py)."""
    if is_dask(binary):
        from ..lazy.chunked_polygons import object_statistics_lazy

        return object_statistics_lazy(dask_array(binary), None if values is None else dask_array(values))
    return Objects(binary).table(values)
