"""How good a postprocessed map is against reference slumps digitized by hand, and which
threshold and minimum object size fit a region best.

Everything is counted inside the valid extent (the quality mask after erosion, as
prepare_export computes it): reference pixels outside it are not counted, and a reference
slump with no pixel centre inside it is left out of the object scores.

- Pixel scores: true/false positive and negative pixels; IoU, F1, precision, recall.
- Object scores: a predicted object (8-connected, as prepare_export keeps it) and a reference
  slump (one polygon feature; its pixels inside the extent) match when their IoU is at least
  `min_iou`; one-to-one, greedy by IoU (highest first). TP = matches, FP = predicted objects
  left unmatched, FN = reference slumps left unmatched; precision, recall, F1; and the share of
  reference slumps that any predicted object overlaps at all ("found").
- Empty cases are defined, never NaN: precision is 1 when nothing was predicted (no false
  alarm), recall and the found share are 1 when there is nothing to find, F1 and IoU are 1 when
  both are empty (scikit-learn's `zero_division=1`).

A sweep over thresholds x minimum sizes erodes the quality mask once (prepare_export_thresholds)
and labels each threshold's objects once; every minimum size is then a selection of those
objects, scored from per-object tables without touching the raster again. No QGIS import here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Sequence

import numpy as np

from ...definitions import Progress
from ..kernels.checks import check_choice, check_size, check_threshold
from ..kernels.objects import Objects
from ..products.api import prepare_export_thresholds

SCORES = ("object_f1", "object_precision", "object_recall", "found_share", "pixel_iou", "pixel_f1", "pixel_precision",
          "pixel_recall")


DEFAULT_MIN_IOU = 0.5




# -- scores --------------------------------------------------------------------------------

def ratio(numerator: float, denominator: float, empty: float) -> float:
    """numerator / denominator, `empty` when the denominator is 0 (nothing to score)."""
    return float(numerator) / float(denominator) if denominator else float(empty)


def pixel_scores(tp: int, fp: int, fn: int, tn: int) -> dict:
    """The pixel counts and their IoU, F1, precision and recall (defined for empty cases)."""
    return {"pixel_tp": int(tp), "pixel_fp": int(fp), "pixel_fn": int(fn), "pixel_tn": int(tn),
            "pixel_iou": ratio(tp, tp + fp + fn, 1.0), "pixel_f1": ratio(2 * tp, 2 * tp + fp + fn, 1.0),
            "pixel_precision": ratio(tp, tp + fp, 1.0), "pixel_recall": ratio(tp, tp + fn, 1.0)}


def object_scores(tp: int, predicted: int, reference: int, found: int) -> dict:
    """Object counts (matches `tp` of `predicted` objects and `reference` slumps, `found` slumps
    overlapped at all) and their precision, recall, F1 and found share."""
    fp, fn = predicted - tp, reference - tp
    return {"predicted_objects": int(predicted), "reference_slumps": int(reference), "object_tp": int(tp),
            "object_fp": int(fp), "object_fn": int(fn), "object_precision": ratio(tp, tp + fp, 1.0),
            "object_recall": ratio(tp, tp + fn, 1.0), "object_f1": ratio(2 * tp, 2 * tp + fp + fn, 1.0),
            "found": int(found), "found_share": ratio(found, reference, 1.0)}


def greedy_matches(pairs_predicted: np.ndarray, pairs_reference: np.ndarray, iou: np.ndarray,
                   min_iou: float) -> np.ndarray:
    """Indices of the pairs matched one-to-one, greedy by IoU (highest first; ties: lower
    predicted then reference id first), among pairs with IoU >= min_iou."""
    candidates = np.flatnonzero(iou >= min_iou)
    order = candidates[np.lexsort((pairs_reference[candidates], pairs_predicted[candidates], -iou[candidates]))]
    used_predicted, used_reference, matched = set(), set(), []
    for index in order:
        p, r = int(pairs_predicted[index]), int(pairs_reference[index])
        if p not in used_predicted and r not in used_reference:
            used_predicted.add(p)
            used_reference.add(r)
            matched.append(index)
    return np.asarray(matched, dtype=np.int64)


def check_min_iou(min_iou) -> float:
    if isinstance(min_iou, bool) or not isinstance(min_iou, numbers.Real) or not 0.0 < float(min_iou) <= 1.0:
        raise ValueError(f"min_iou must be a number in (0, 1], got {min_iou!r}")
    return float(min_iou)


# -- one map against the reference ------------------------------------------------------------

@dataclasses.dataclass
class Overlaps:
    """The objects of one binarized map against the reference, as tables: per object its pixels
    and its pixels on reference slumps; per (object, slump) pair the shared pixels."""

    objects: Objects
    npixel: np.ndarray  # per object (index 0 = label 1)
    on_reference: np.ndarray  # per object: its pixels on any reference slump
    pair_object: np.ndarray  # labels 1..n
    pair_reference: np.ndarray  # reference ids 1..m
    pair_pixels: np.ndarray

    @classmethod
    def of(cls, objects: Objects, reference: Reference) -> Overlaps:
        flat, labels = objects.pixels()
        ids = reference.ids.reshape(-1)[flat].astype(np.int64)
        hit = ids > 0
        on_reference = np.bincount(labels[hit], minlength=objects.count + 1)[1:].astype(np.int64)
        width = reference.count + 1
        keys, counts = np.unique(labels[hit] * width + ids[hit], return_counts=True)
        return cls(objects, objects.npixel(), on_reference, keys // width, keys % width, counts.astype(np.int64))


@dataclasses.dataclass
class Reference:
    """Reference slumps on the grid, inside the extent: ids 1..count (0 = none)."""

    ids: np.ndarray
    count: int  # features given (some may have no pixel inside the extent)
    npixel: np.ndarray  # per id (index 0 = id 1): pixels inside the extent

    @property
    def counted(self) -> np.ndarray:
        """Ids (1..count) of the slumps with a pixel inside the extent: those scored."""
        return np.flatnonzero(self.npixel > 0) + 1


def reference_inside(ids: np.ndarray, valid: np.ndarray, count: int | None = None) -> Reference:
    """The reference ids raster cut to the valid extent (a new array)."""
    count = int(ids.max(initial=0)) if count is None else int(count)
    ids = np.where(valid != 0, ids, 0).astype(np.int32)
    return Reference(ids, count, np.bincount(ids.reshape(-1), minlength=count + 1)[1:count + 1].astype(np.int64))


def score(overlaps: Overlaps, reference: Reference, keep: np.ndarray, extent_pixels: int, min_iou: float) -> dict:
    """Pixel and object scores of the objects `keep` (bool per object) of `overlaps`, and the
    matches: `matched_objects`, `matched_reference` (ids), `best_iou_of_reference` (per id)."""
    tp = int(overlaps.on_reference[keep].sum())
    predicted_pixels = int(overlaps.npixel[keep].sum())
    reference_pixels = int(reference.npixel.sum())
    fp, fn = predicted_pixels - tp, reference_pixels - tp
    row = pixel_scores(tp, fp, fn, extent_pixels - tp - fp - fn)

    kept_pair = keep[overlaps.pair_object - 1]
    pair_object, pair_reference = overlaps.pair_object[kept_pair], overlaps.pair_reference[kept_pair]
    shared = overlaps.pair_pixels[kept_pair]
    union = overlaps.npixel[pair_object - 1] + reference.npixel[pair_reference - 1] - shared
    iou = shared / union if shared.size else np.zeros(0)
    matched = greedy_matches(pair_object, pair_reference, iou, min_iou)
    best_iou = np.zeros(reference.count)
    np.maximum.at(best_iou, pair_reference - 1, iou)
    found = np.unique(pair_reference).size
    row.update(object_scores(matched.size, int(keep.sum()), reference.counted.size, found))
    row.update(matched_objects=pair_object[matched], matched_reference=pair_reference[matched],
               best_iou_of_reference=best_iou)
    return row


# -- the sweep ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Setting:
    threshold: float
    min_object_size: int
    scores: dict  # the row: counts and scores (see score), seconds
    objects: Objects | None = None  # the predicted objects before the size filter (best setting only)
    keep: np.ndarray | None = None  # which of them this setting keeps

    def row(self) -> dict:
        """The table row: the setting and its numbers (no arrays)."""
        return {"threshold": self.threshold, "min_object_size": self.min_object_size,
                **{k: v for k, v in self.scores.items() if not isinstance(v, np.ndarray)}}


@dataclasses.dataclass
class Evaluation:
    settings: list  # Setting per threshold x minimum size, in the order swept
    best: Setting  # by `by`
    by: str
    reference: Reference
    extent: np.ndarray  # uint8 0/1
    extent_pixels: int
    seconds_erosion: float  # preparing the extent and every threshold's objects together

    def false_positives(self) -> np.ndarray:
        """bool raster of the best setting's predicted objects that match no reference slump."""
        best = self.best
        unmatched = best.keep.copy()
        unmatched[best.scores["matched_objects"] - 1] = False
        labels = best.objects.label_image(np.int32)
        return np.concatenate([[False], unmatched])[labels]

    def missed(self) -> np.ndarray:
        """Ids of the reference slumps (counted ones) the best setting does not match."""
        return np.setdiff1d(self.reference.counted, self.best.scores["matched_reference"])


def check_sweep(thresholds: Sequence[float], min_sizes: Sequence[int], by: str) -> tuple[list, list]:
    """The thresholds and minimum sizes, checked (non-empty, no repeats)."""
    for name, values in (("thresholds", thresholds), ("min_object_sizes", min_sizes)):
        if isinstance(values, (str, numbers.Real)) or len(values) == 0:
            raise ValueError(f"{name} must be a non-empty list, got {values!r}")
    checked_thresholds = [check_threshold(value) for value in thresholds]
    checked_sizes = [check_size("min_object_size", value) for value in min_sizes]
    for name, values in (("thresholds", checked_thresholds), ("min_object_sizes", checked_sizes)):
        if len(set(values)) < len(values):
            raise ValueError(f"{name} must differ, got {values!r}")
    check_choice("by", by, SCORES)
    return checked_thresholds, checked_sizes


def evaluate(tile, reference_ids: np.ndarray, thresholds: Sequence[float], min_object_sizes: Sequence[int], *,
             reference_count: int | None = None, min_iou: float = DEFAULT_MIN_IOU, by: str = "object_f1",
             progress: Progress | None = None, **options) -> Evaluation:
    """Score every threshold x minimum object size of DARTS' postprocessing of `tile` (as for
    prepare_export: `probabilities`, `quality_data_mask`; in memory) against `reference_ids`
    (int raster on the tile's grid: 0 none, 1..n one id per reference slump; `reference_count`
    slumps given, default the highest id). `options` go to prepare_export_thresholds
    (mask_erosion_size, edge_erosion_size, quality_level, boundary, size_connectivity, exclude,
    device, ...); min_object_size is swept instead. The best setting is the first with the
    highest score `by`. `progress(fraction, message)` may raise to cancel."""
    thresholds, min_sizes = check_sweep(thresholds, min_object_sizes, by)
    min_iou = check_min_iou(min_iou)
    if "min_object_size" in options or "bin_threshold" in options:
        raise TypeError("evaluate sweeps min_object_sizes and thresholds: give those lists instead")
    reference_ids = np.asarray(reference_ids)
    if reference_ids.dtype.kind not in "ui" or reference_ids.ndim != 2:
        raise TypeError(f"reference_ids must be a 2-D integer raster of reference ids, got {reference_ids.dtype} "
                        f"{reference_ids.shape}")
    if reference_ids.shape != tuple(np.shape(tile["probabilities"])):
        raise ValueError(f"reference_ids have shape {reference_ids.shape}, the probabilities "
                         f"{tuple(np.shape(tile['probabilities']))}")
    report = progress or (lambda fraction, message: None)
    connectivity = options.get("size_connectivity", 8)

    started = time.perf_counter()
    prepared = prepare_export_thresholds(tile, thresholds, min_object_size=0, progress=lambda f, m: report(0.4 * f, m),
                                         **options)
    seconds_erosion = time.perf_counter() - started
    extent = np.asarray(prepared[thresholds[0]]["extent"])
    reference = reference_inside(reference_ids, extent, reference_count)
    if reference.count and not reference.counted.size:
        raise ValueError(f"none of the {reference.count} reference slumps has a pixel inside the valid extent "
                         f"({int(extent.sum())} pixels): check the reference layer's place and CRS, and the quality mask")
    extent_pixels = int(extent.sum())

    settings, best = [], None
    for index, threshold in enumerate(thresholds):
        started = time.perf_counter()
        report(0.4 + 0.6 * index / len(thresholds), f"Scoring threshold {threshold:g}")
        binary = np.asarray(prepared.pop(threshold)["binarized_segmentation"])
        objects = Objects(binary)
        overlaps = Overlaps.of(objects, reference)
        shared_seconds = time.perf_counter() - started
        parts = Objects(binary, 4) if connectivity == 4 else None
        del binary
        for min_size in min_sizes:
            started = time.perf_counter()
            these_objects, these_overlaps = objects, overlaps
            if parts is not None:  # sizes of 4-connected parts: the kept parts' 8-connected objects
                kept_parts = np.concatenate([[False], parts.npixel() >= min_size])[parts.label_image(np.int32)]
                these_objects = Objects(kept_parts)
                these_overlaps = Overlaps.of(these_objects, reference)
                keep = np.ones(these_objects.count, bool)
            else:
                keep = overlaps.npixel >= min_size
            row = score(these_overlaps, reference, keep, extent_pixels, min_iou)
            row["seconds"] = time.perf_counter() - started + shared_seconds / len(min_sizes)
            setting = Setting(threshold, min_size, row)
            settings.append(setting)
            if best is None or row[by] > best.scores[by]:
                best = setting
                best.objects, best.keep = these_objects, keep
            report(0.4 + 0.6 * (index + (min_sizes.index(min_size) + 1) / len(min_sizes)) / len(thresholds),
                   f"Scoring threshold {threshold:g}")
    report(1.0, "Done")
    return Evaluation(settings, best, by, reference, extent, extent_pixels, seconds_erosion)


# -- the reference on the grid --------------------------------------------------------------------

def reference_raster(source: str, shape, geotransform, crs, *, layer: str | None = None, where: str | None = None,
                     what: str = "reference") -> tuple[np.ndarray, object]:
    """(int32 raster of reference ids 1..n, 0 none; the in-memory OGR dataset of the polygons in
    the grid's CRS, layer 'polygons', feature i of it has id i + 1 and keeps its source FID).

    Burnt at pixel centres (as exclusion masks are). Polygons that overlap each other: the later
    feature takes the shared pixels. A layer without a CRS is an error: its slumps cannot be
    placed for certain."""
    from ..files.exclusion import polygons_on_grid, polygons_without_crs
    from ..files.gdal import osgeo

    if polygons_without_crs(source, layer):
        raise ValueError(f"{what}: the reference polygons have no CRS: set it (e.g. 'Assign projection') so that "
                         f"they can be placed on the probabilities")
    gdal, ogr, _ = osgeo()
    polygons = polygons_on_grid(source, shape, geotransform, crs, layer=layer, where=where, what=what)
    target = polygons.GetLayerByName("polygons")
    target.CreateField(ogr.FieldDefn("burn_id", ogr.OFTInteger))
    features = list(target)
    for index, feature in enumerate(features, start=1):
        feature.SetField("burn_id", index)
        target.SetFeature(feature)
    raster = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Int32)
    from ..files.gdal import gdal_geotransform, spatial_reference

    if geotransform is not None:
        raster.SetGeoTransform(gdal_geotransform(geotransform))
    srs = spatial_reference(crs)
    if srs is not None:
        raster.SetSpatialRef(srs)
    if features:
        gdal.Rasterize(raster, polygons, layers=["polygons"], attribute="burn_id")
    ids = raster.GetRasterBand(1).ReadAsArray().astype(np.int32)
    total = _feature_count(source, layer, where)
    if total and not ids.any():
        raise ValueError(f"{what}: none of the {total} reference slumps lies on the probabilities raster "
                         f"(check that they cover the same place)")
    return ids, polygons


def _feature_count(source: str, layer: str | None, where: str | None) -> int:
    """Features of the reference layer (selected by `where`), also those far off the grid,
    which polygons_on_grid does not read."""
    from ..files.gdal import open_read_only

    with open_read_only(source, "vector") as dataset:
        polygons = dataset.GetLayerByName(layer) if layer else dataset.GetLayer(0)
        if where:
            polygons.SetAttributeFilter(where)
        return polygons.GetFeatureCount()


def reference_count(source: str, layer: str | None = None, where: str | None = None) -> int:
    """How many reference slumps the layer holds (selected by `where`), wherever they lie."""
    return _feature_count(source, layer, where)


def write_missed(path: str, layer_name: str, polygons, missed_ids, evaluation: Evaluation, crs, tags=None) -> int:
    """Write the reference slumps `missed_ids` (ids of `polygons`, as reference_raster gave them)
    into the GeoPackage `path` with their source FID, pixels inside the extent, best IoU with
    any predicted object of the best setting and whether any object overlaps them at all."""
    from ..files.gdal import gdal_writing, osgeo, spatial_reference

    _, ogr, _ = osgeo()
    source = polygons.GetLayerByName("polygons")
    wanted = set(int(i) for i in missed_ids)
    best_iou = evaluation.best.scores["best_iou_of_reference"]
    with gdal_writing(path):
        dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        layer = dataset.CreateLayer(layer_name, spatial_reference(crs), ogr.wkbMultiPolygon)
        for name, kind in (("reference_fid", ogr.OFTInteger64), ("npixel", ogr.OFTInteger64),
                           ("best_iou", ogr.OFTReal), ("overlapped", ogr.OFTInteger)):
            layer.CreateField(ogr.FieldDefn(name, kind))
        source.ResetReading()
        written = 0
        layer.StartTransaction()
        for feature in source:
            index = feature.GetField("burn_id")
            if index not in wanted:
                continue
            out = ogr.Feature(layer.GetLayerDefn())
            out.SetGeometry(ogr.ForceToMultiPolygon(feature.GetGeometryRef().Clone()))
            out.SetField("reference_fid", feature.GetFID())
            out.SetField("npixel", int(evaluation.reference.npixel[index - 1]))
            out.SetField("best_iou", float(best_iou[index - 1]))
            out.SetField("overlapped", int(best_iou[index - 1] > 0))
            layer.CreateFeature(out)
            written += 1
        layer.CommitTransaction()
        if tags:
            dataset.SetMetadata({str(k): str(v) for k, v in tags.items()})
        dataset = None
    return written


def best_line(evaluation: Evaluation) -> str:
    """The best setting in one line for the log."""
    best = evaluation.best
    scores = best.scores
    return (f"Best setting by {evaluation.by}: threshold {best.threshold:g}, minimum object size {best.min_object_size} "
            f"({evaluation.by} {scores[evaluation.by]:.3f}; objects: {scores['object_tp']} matched, "
            f"{scores['object_fp']} false positives, {scores['object_fn']} missed of {scores['reference_slumps']}; "
            f"pixel IoU {scores['pixel_iou']:.3f}, F1 {scores['pixel_f1']:.3f})")


CSV_COLUMNS = ("threshold", "min_object_size", "object_f1", "object_precision", "object_recall", "found_share",
               "object_tp", "object_fp", "object_fn", "predicted_objects", "reference_slumps", "found", "pixel_iou",
               "pixel_f1", "pixel_precision", "pixel_recall", "pixel_tp", "pixel_fp", "pixel_fn", "pixel_tn", "seconds",
               "best")


def write_csv(path: str, evaluation: Evaluation) -> None:
    """One row per setting (CSV_COLUMNS; `best` is 1 on the best setting's row)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for setting in evaluation.settings:
            row = {**setting.row(), "best": int(setting is evaluation.best)}
            writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])


def _cell(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value
