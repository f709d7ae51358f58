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

Several tiles (evaluate_tiles): the tiles are found and read as processtiles reads them
(tiles.tiles_found, tiles.read_tile_inputs: a tile's quality mask eroded, or its extent as
given), one at a time, and each is postprocessed alone with the same settings, as processtiles
would. The reference polygons (any CRS) are burnt onto each tile's grid. The scores are those of
one map made of the tiles by these rules:

- Each place is counted once: a tile counts only its **own area**, the pixels of its valid
  extent whose centres lie in no earlier tile's valid extent (tiles in tile-id order, the order
  processtiles lists them in; the earlier extents are reprojected onto the tile's grid). So
  where tiles overlap, the first tile's pixels (its predictions and the reference burnt on its
  grid) count and the others' do not; pixel counts are sums over the tiles' own areas.
- A reference slump is one slump whatever the tiles it spans: its pixels are summed over the
  own areas of all tiles (one id per feature of the layer).
- A predicted object is a tile's object (8-connected, whole in its tile, selected there by the
  minimum size as prepareexport does) cut to the tile's own area; objects of different tiles
  that touch across the border between their own areas (pixel centres at most 1.5 pixels
  apart, i.e. 8-neighbours on one grid) are one object. Pixels, shared pixels and IoU of an
  object and a slump are sums over the tiles' parts, and the one-to-one matching is then made
  over the whole region as for one raster. Tiles and a mosaic of them with the first tile on
  top (no erosion, boundary "clip", minimum size 0) give the same scores.
- A cost of the rule: with boundary "remove", a tile removes an object that touches its
  extent's edge, so a slump across an earlier tile's extent edge inside an overlap loses its
  part on that tile's side (counted there as missed pixels), though the next tile sees it
  whole. Boundary "clip" (as DARTS exports) keeps both parts, which are joined.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Sequence

import numpy as np

from ...definitions import SCORES, Progress
from ..kernels.checks import check_choice, check_size, check_threshold
from ..kernels.objects import Objects
from ..products.api import prepare_export_thresholds



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
                     what: str = "reference", required: bool = True) -> tuple[np.ndarray, object]:
    """(int32 raster of reference ids 1..n, 0 none; the in-memory OGR dataset of the polygons in
    the grid's CRS, layer 'polygons', feature i of it has id i + 1 and keeps its source FID).

    Burnt at pixel centres (as exclusion masks are). Polygons that overlap each other: the later
    feature takes the shared pixels. A layer without a CRS is an error: its slumps cannot be
    placed for certain; so is a reference of which no slump lies on the grid, unless not
    `required` (a tile of several)."""
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
    total = _feature_count(source, layer, where) if required else 0
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


# -- several tiles -------------------------------------------------------------------------------

STITCH_PIXELS = 1.5  # object pixels of two tiles at most this far apart (centre to centre, in pixels) touch


@dataclasses.dataclass
class Parts:
    """The objects of one tile at one threshold (with 4-connectivity: and one minimum size) that
    have a pixel in the tile's own area, as tables: the whole object's size in the tile (which
    the minimum size selects on), its pixels in the own area, those on reference slumps, its
    (part, reference id) shared pixels, and its pixels on the own area's border (in the common
    CRS), by which parts of different tiles are joined into one object."""

    tile: int
    labels: np.ndarray  # the objects' labels in the tile
    size: np.ndarray
    npixel: np.ndarray
    on_reference: np.ndarray
    pair_part: np.ndarray  # positions in labels
    pair_reference: np.ndarray  # global reference ids 1..count
    pair_pixels: np.ndarray
    points: np.ndarray  # (n, 2)
    point_part: np.ndarray

    @classmethod
    def of(cls, tile: int, objects: Objects, own: np.ndarray, border: np.ndarray, reference_ids: np.ndarray,
           width: int, to_common) -> Parts:
        flat, labels = objects.pixels()
        size = objects.npixel()
        inside = own.reshape(-1)[flat]
        flat, labels = flat[inside], labels[inside]
        present = np.unique(labels)
        position = np.zeros(objects.count + 1, np.int64)
        position[present] = np.arange(present.size)
        part = position[labels]
        npixel = np.bincount(part, minlength=present.size).astype(np.int64)
        ids = reference_ids.reshape(-1)[flat].astype(np.int64)
        hit = ids > 0
        on_reference = np.bincount(part[hit], minlength=present.size).astype(np.int64)
        keys, counts = np.unique(part[hit] * width + ids[hit], return_counts=True)
        edge = border.reshape(-1)[flat]
        return cls(tile, present, size[present - 1] if present.size else np.zeros(0, np.int64), npixel, on_reference,
                   keys // width, keys % width, counts.astype(np.int64), to_common(flat[edge]), part[edge])


def _join(parts: list[Parts], keeps: list[np.ndarray], radius: float):
    """The kept parts of every tile as one set of objects: parts of different tiles with
    border pixels at most `radius` apart are one object (transitively). (Overlaps of the
    objects, numbered 1..n; per list of parts, the object of each kept part, 0 where not kept)."""
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.spatial import cKDTree

    new, offset = [], 0
    for item, keep in zip(parts, keeps):
        numbers = np.full(item.labels.size, -1, np.int64)
        numbers[keep] = offset + np.arange(int(keep.sum()))
        new.append(numbers)
        offset += int(keep.sum())
    npixel = np.concatenate([item.npixel[keep] for item, keep in zip(parts, keeps)] + [np.zeros(0, np.int64)])
    on_reference = np.concatenate([item.on_reference[keep] for item, keep in zip(parts, keeps)]
                                  + [np.zeros(0, np.int64)])
    point_part = np.concatenate([numbers[item.point_part] for item, numbers in zip(parts, new)] + [np.zeros(0, int)])
    point_tile = np.concatenate([np.full(item.point_part.size, item.tile) for item in parts] + [np.zeros(0, int)])
    points = np.concatenate([item.points for item in parts] + [np.zeros((0, 2))])
    kept_point = point_part >= 0
    point_part, point_tile, points = point_part[kept_point], point_tile[kept_point], points[kept_point]
    edges = np.zeros((0, 2), np.int64)
    if len(points) > 1:
        close = cKDTree(points).query_pairs(radius, output_type="ndarray")
        close = close[point_tile[close[:, 0]] != point_tile[close[:, 1]]]
        edges = point_part[close]
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(offset, offset))
    count, component = csgraph.connected_components(graph, directed=False) if offset else (0, np.zeros(0, int))
    object_npixel = np.bincount(component, npixel, minlength=count).astype(np.int64)
    object_on_reference = np.bincount(component, on_reference, minlength=count).astype(np.int64)
    width = 1 + max([int(item.pair_reference.max(initial=0)) for item in parts] + [0])
    pair_object = np.concatenate([component[numbers[item.pair_part[numbers[item.pair_part] >= 0]]]
                                  for item, numbers in zip(parts, new)] + [np.zeros(0, np.int64)]).astype(np.int64)
    pair_reference = np.concatenate([item.pair_reference[numbers[item.pair_part] >= 0]
                                     for item, numbers in zip(parts, new)] + [np.zeros(0, np.int64)])
    pair_pixels = np.concatenate([item.pair_pixels[numbers[item.pair_part] >= 0]
                                  for item, numbers in zip(parts, new)] + [np.zeros(0, np.int64)])
    keys, inverse = np.unique(pair_object * width + pair_reference, return_inverse=True)
    shared = np.bincount(inverse.reshape(-1), pair_pixels, minlength=keys.size).astype(np.int64)
    overlaps = Overlaps(None, object_npixel, object_on_reference, keys // width + 1, keys % width, shared)
    objects_of = [np.where(numbers >= 0, component[np.maximum(numbers, 0)] + 1, 0) if offset else
                  np.zeros(numbers.size, np.int64) for numbers in new]
    return overlaps, objects_of


@dataclasses.dataclass
class TilesEvaluation(Evaluation):
    """evaluate_tiles' result: an Evaluation over several tiles (no single extent raster), and
    what it takes to find the best setting's objects again tile by tile."""

    sources: list = dataclasses.field(default_factory=list)  # tiles.TileSource, in id order
    settings_used: object = None  # tiles.TileSettings
    common_crs: str = ""  # WKT of the CRS the tiles' extents and objects are joined in
    outlines: list = dataclasses.field(default_factory=list)  # WKB of each tile's valid extent, common CRS
    tile_pixels: list = dataclasses.field(default_factory=list)  # pixels each tile counts (its own area)
    reference_fids: list = dataclasses.field(default_factory=list)  # source FID of reference id i + 1
    best_objects_of: list = dataclasses.field(default_factory=list)  # per tile: {label: object} of the best setting

    def false_positives(self):
        raise TypeError("several tiles have no single raster: use write_tile_false_positives")

    def false_positive_labels(self) -> dict:
        """{tile position: labels (in that tile, at the best setting) of the parts of objects
        that match no reference slump}."""
        matched = set(int(i) for i in self.best.scores["matched_objects"])
        out = {}
        for tile, (labels, objects) in enumerate(self.best_objects_of):
            unmatched = np.array([object_id not in matched for object_id in objects.tolist()], bool)
            if unmatched.any():
                out[tile] = labels[unmatched]
        return out


def _common_srs(grid, srs):
    """An azimuthal equidistant CRS (metres) centred on the first tile, in which every tile's
    extent and border pixels are compared (distances near the region are true)."""
    from ..files.gdal import osgeo

    _, _, osr = osgeo()
    transform = grid.geotransform
    x = transform[0] + transform[1] * grid.width / 2 + transform[2] * grid.height / 2
    y = transform[3] + transform[4] * grid.width / 2 + transform[5] * grid.height / 2
    lon_lat = osr.SpatialReference()
    lon_lat.ImportFromEPSG(4326)
    lon_lat.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat = osr.CoordinateTransformation(srs, lon_lat).TransformPoint(x, y)[:2]
    common = osr.SpatialReference()
    common.ImportFromProj4(f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +datum=WGS84 +units=m "
                           f"+no_defs")
    common.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return common


def _claimed(outlines: list, grid, srs, common) -> np.ndarray:
    """bool raster on the tile's grid: pixel centres inside the valid extent of an earlier tile
    (outlines: OGR MultiPolygons in the common CRS)."""
    from ..files.gdal import gdal_geotransform, osgeo

    gdal, ogr, osr = osgeo()
    raster = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Byte)
    raster.SetGeoTransform(gdal_geotransform(grid.geotransform))
    raster.SetSpatialRef(srs)
    if outlines:
        vector = gdal.GetDriverByName("Memory").Create("", 0, 0, 0, gdal.GDT_Unknown)
        layer = vector.CreateLayer("claimed", srs, ogr.wkbMultiPolygon)
        back = osr.CoordinateTransformation(common, srs)
        steps = np.linspace(0.0, 1.0, 65)  # the grid's outline in the common CRS: only extents near it are burnt
        cols = np.concatenate([steps, np.ones(65), steps[::-1], np.zeros(65)]) * grid.width
        rows = np.concatenate([np.zeros(65), steps, np.ones(65), steps[::-1]]) * grid.height
        t = grid.geotransform
        corners = np.array(osr.CoordinateTransformation(srs, common).TransformPoints(np.column_stack(
            [t[0] + cols * t[1] + rows * t[2], t[3] + cols * t[4] + rows * t[5]]).tolist()))[:, :2]
        (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
        margin = 0.01 * max(x1 - x0, y1 - y0)
        for wkb in outlines:
            geometry = ogr.CreateGeometryFromWkb(wkb)
            a0, a1, b0, b1 = geometry.GetEnvelope()
            if a0 > x1 + margin or a1 < x0 - margin or b0 > y1 + margin or b1 < y0 - margin:
                continue
            geometry.Transform(back)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetGeometry(geometry)
            layer.CreateFeature(feature)
        gdal.Rasterize(raster, vector, layers=["claimed"], burnValues=[1])
    return raster.GetRasterBand(1).ReadAsArray() != 0


def _border(own: np.ndarray) -> np.ndarray:
    """Pixels of `own` with an 8-neighbour outside it (beyond the raster counts as outside)."""
    from scipy import ndimage

    inner = ndimage.binary_erosion(np.pad(own, 1), structure=np.ones((3, 3), bool))[1:-1, 1:-1]
    return own & ~inner


def reference_fids(source: str, layer: str | None = None, where: str | None = None) -> list:
    """The source FIDs of the reference slumps (selected by `where`), in the layer's order:
    reference id i + 1 of evaluate_tiles is FID fids[i]."""
    from ..files.exclusion import open_polygons

    with open_polygons(source, layer, where, "reference") as (polygons, _):
        return [feature.GetFID() for feature in polygons if feature.GetGeometryRef() is not None]


def _tile_variants(binary, min_sizes, connectivity):
    """[(Objects, minimum sizes it serves)]: the 8-connected objects once, or with
    4-connectivity, per minimum size the kept 4-connected parts' 8-connected objects (as
    evaluate and prepare_export count sizes)."""
    if connectivity != 4:
        return [(Objects(binary), list(min_sizes))]
    parts = Objects(binary, 4)
    labels, sizes = parts.label_image(np.int32), parts.npixel()
    return [(Objects(np.concatenate([[False], sizes >= size])[labels]), [size]) for size in min_sizes]


def evaluate_tiles(inputs, reference, thresholds: Sequence[float], min_object_sizes: Sequence[int], *,
                   settings=None, min_iou: float = DEFAULT_MIN_IOU, by: str = "object_f1", year: int | None = None,
                   progress: Progress | None = None) -> TilesEvaluation:
    """evaluate over the tiles under `inputs` (a folder, or a list of tile folders or of their
    probabilities files, as processtiles finds them: tiles.tiles_found), each read and
    postprocessed as processtiles does (tiles.read_tile_inputs: its quality mask eroded, or its
    extent as given) with `settings` (a tiles.TileSettings; its threshold and minimum size are
    swept instead), against the reference slumps `reference` = (file, layer or None, OGR filter
    or None), polygons in any CRS burnt onto each tile's grid. The rule for tile borders and
    overlaps is the module's (see "Several tiles"). One tile is in memory at a time. `year`:
    only the tiles of that year (tiles_of_year; needed when the tiles are of several years)."""
    from ..files.gdal import osgeo
    from .tiles import TileSettings, extent_outline, pixel_size_m, read_tile_inputs, tiles_found

    thresholds, min_sizes = check_sweep(thresholds, min_object_sizes, by)
    min_iou = check_min_iou(min_iou)
    settings = (settings or TileSettings()).checked()
    if settings.binarization != "recompute":
        raise ValueError("evaluate binarizes each tile with the swept thresholds: binarization must be 'recompute'")
    report = progress or (lambda fraction, message: None)
    sources, _ = tiles_found(inputs, settings.subset, stop_on_error=True)
    sources = tiles_of_year(sources, year)
    path, layer, where = reference
    fids = reference_fids(path, layer, where)
    global_of = {fid: index for index, fid in enumerate(fids, start=1)}
    count = len(fids)
    width = count + 1
    _check_reference_on_tiles(sources, path, layer, where, count)
    _, ogr, osr = osgeo()
    connectivity = settings.size_connectivity
    parts = {}  # (threshold, variant) -> [Parts per tile]
    variants_of = {}  # threshold -> [(variant, sizes)]
    reference_npixel = np.zeros(count + 1, np.int64)
    outlines, tile_pixels, common, radius, seconds_erosion = [], [], None, 0.0, 0.0
    share = 0.95 / len(sources)
    for position, source in enumerate(sources):
        def tile_report(fraction, message, position=position, source=source):
            report(0.02 + share * (position + fraction), f"Tile {source.tile_id}: {message}")

        started = time.perf_counter()
        try:
            tile_inputs = read_tile_inputs(source, settings)
        except (ValueError, RuntimeError, OSError) as error:
            raise ValueError(f"tile {source.tile_id}: {' '.join(str(error).split())}") from None
        grid, srs = tile_inputs.grid, tile_inputs.srs
        tile = {"probabilities": tile_inputs.probabilities, "quality_data_mask": tile_inputs.quality}
        prepared = prepare_export_thresholds(tile, thresholds, min_object_size=0,
                                             progress=lambda f, m: tile_report(0.5 * f, m), **tile_inputs.options)
        del tile, tile_inputs
        seconds_erosion += time.perf_counter() - started
        if common is None:
            common = _common_srs(grid, srs)
        to_common = osr.CoordinateTransformation(srs, common)
        radius = max(radius, STITCH_PIXELS * pixel_size_m(grid.geotransform, srs, grid.height))
        extent = np.asarray(prepared[thresholds[0]]["extent"]) != 0
        own = extent & ~_claimed(outlines, grid, srs, common)
        outline = extent_outline(extent, grid.geotransform, srs)
        outline.Transform(to_common)
        outlines.append(bytes(outline.ExportToWkb()))
        del extent, outline
        tile_pixels.append(int(own.sum()))
        local, polygons = reference_raster(path, own.shape, grid.geotransform, grid.crs, layer=layer, where=where,
                                           what="reference", required=False)
        local_to_global = np.array([0] + [global_of.get(feature.GetFID(), 0)
                                          for feature in polygons.GetLayerByName("polygons")], np.int32)
        reference_ids = np.where(own, local_to_global[local], np.int32(0))  # int32: 4 bytes a pixel of a full tile
        del local, polygons
        reference_npixel += np.bincount(reference_ids.reshape(-1), minlength=width)[:width]
        border = _border(own)
        transform = grid.geotransform

        def common_points(flat, transform=transform, columns=own.shape[1], to_common=to_common):
            rows, cols = np.divmod(flat, columns)
            xs = transform[0] + (cols + 0.5) * transform[1] + (rows + 0.5) * transform[2]
            ys = transform[3] + (cols + 0.5) * transform[4] + (rows + 0.5) * transform[5]
            if not xs.size:
                return np.zeros((0, 2))
            return np.array(to_common.TransformPoints(np.column_stack([xs, ys]).tolist()))[:, :2]

        for number, threshold in enumerate(thresholds):
            tile_report(0.5 + 0.5 * number / len(thresholds), f"objects at threshold {threshold:g}")
            binary = np.asarray(prepared.pop(threshold)["binarized_segmentation"])
            variants = _tile_variants(binary, min_sizes, connectivity)
            del binary
            variants_of[threshold] = [sizes for _, sizes in variants]
            for variant, (objects, _) in enumerate(variants):
                parts.setdefault((threshold, variant), []).append(
                    Parts.of(position, objects, own, border, reference_ids, width, common_points))
            del variants
        del own, border, reference_ids, prepared
    if count and not reference_npixel[1:].any():
        raise ValueError(f"none of the {count} reference slumps has a pixel inside the valid extent of any of the "
                         f"{len(sources)} tiles: check the reference layer's place and CRS, and the tiles' masks")
    reference = Reference(np.zeros((0, 0), np.int32), count, reference_npixel[1:])
    extent_pixels = int(sum(tile_pixels))

    settings_swept, best, best_objects_of = [], None, None
    for number, threshold in enumerate(thresholds):
        report(0.97 + 0.03 * number / len(thresholds), f"Scoring threshold {threshold:g}")
        for variant, sizes in enumerate(variants_of[threshold]):
            tables = parts[(threshold, variant)]
            for min_size in sizes:
                started = time.perf_counter()
                keeps = [item.size >= min_size for item in tables]
                overlaps, objects_of = _join(tables, keeps, radius)
                row = score(overlaps, reference, np.ones(overlaps.npixel.size, bool), extent_pixels, min_iou)
                row["seconds"] = time.perf_counter() - started
                setting = Setting(threshold, min_size, row)
                settings_swept.append(setting)
                if best is None or row[by] > best.scores[by]:
                    best = setting
                    best.keep = np.ones(overlaps.npixel.size, bool)
                    best_objects_of = [(item.labels[keep], objects[keep])
                                       for item, keep, objects in zip(tables, keeps, objects_of)]
        for variant in range(len(variants_of[threshold])):
            del parts[(threshold, variant)]
    order = {(t, m): i for i, (t, m) in enumerate((t, m) for t in thresholds for m in min_sizes)}
    settings_swept.sort(key=lambda s: order[(s.threshold, s.min_object_size)])
    report(1.0, "Done")
    return TilesEvaluation(settings_swept, best, by, reference, None, extent_pixels, seconds_erosion,
                           sources=sources, settings_used=settings, common_crs=common.ExportToWkt(),
                           outlines=outlines, tile_pixels=tile_pixels, reference_fids=fids,
                           best_objects_of=best_objects_of)


def tiles_of_year(sources: list, year: int | None) -> list:
    """The tiles taken in `year` (their DARTS ids' year: TileSource.date), or all of them when
    `year` is None. Tiles of several years without a year are an error: one place would be
    counted by whichever year's tile comes first, against a reference of one year."""
    by_year = {}
    for source in sources:
        by_year.setdefault(source.date().year, []).append(source)
    listed = ", ".join(f"{'no date' if key is None else key}: {len(found)} tile{'s' * (len(found) > 1)}"
                       for key, found in sorted(by_year.items(), key=lambda item: (item[0] is None, item[0] or 0)))
    if year is None:
        if len(by_year) > 1:
            raise ValueError(f"the tiles are of several years ({listed}): give the year of the reference slumps (YEAR)")
        return sources
    if year not in by_year:
        raise ValueError(f"no tile of {year} ({listed})")
    return by_year[year]


def _check_reference_on_tiles(sources, path, layer, where, count) -> None:
    """Before any tile is read: an error when reference slumps are given but none lies on any
    tile's grid (a wrong place or CRS), which would otherwise show only after every tile."""
    from ..files.exclusion import polygons_on_grid, polygons_without_crs
    from ..files.grids import grid_of

    if polygons_without_crs(path, layer):
        raise ValueError("reference: the reference polygons have no CRS: set it (e.g. 'Assign projection') so that "
                         "they can be placed on the tiles")
    if not count:
        return
    for source in sources:
        grid = grid_of(source.probabilities, f"{source.tile_id}/{source.probabilities}")
        polygons = polygons_on_grid(path, (grid.height, grid.width), grid.geotransform, grid.crs, layer=layer,
                                    where=where, what="reference")
        if polygons.GetLayerByName("polygons").GetFeatureCount():
            return
    raise ValueError(f"none of the {count} reference slumps lies on any of the {len(sources)} tiles (check that "
                     f"they cover the same place, and the reference layer's CRS)")


def write_tile_false_positives(path: str, layer_name: str, evaluation: TilesEvaluation, crs, tags=None,
                               progress: Progress | None = None) -> int:
    """Write the best setting's false positives of a TilesEvaluation into the GeoPackage `path`
    (in `crs`): each tile that holds a part of one is read and postprocessed again at the best
    threshold (one tile in memory at a time), and each part inside the tile's own area is a
    feature with its tile_id and polygonize's statistics (an object across a tile border is one
    feature per tile). Returns the number of features."""
    from ..files.gdal import osgeo, spatial_reference
    from .tiles import read_tile_inputs
    from ..files.layers import Layout, write_layer
    from ..products.polygons import object_features

    _, _, osr = osgeo()
    report = progress or (lambda fraction, message: None)
    wanted = evaluation.false_positive_labels()
    target = spatial_reference(crs)
    common = spatial_reference(evaluation.common_crs)
    best, settings = evaluation.best, evaluation.settings_used
    written, created = 0, False
    for step, position in enumerate(sorted(wanted)):
        source = evaluation.sources[position]
        report(step / len(wanted), f"False positives of tile {source.tile_id}")
        inputs = read_tile_inputs(source, settings)
        grid, srs = inputs.grid, inputs.srs
        prepared = prepare_export_thresholds({"probabilities": inputs.probabilities,
                                              "quality_data_mask": inputs.quality}, [best.threshold],
                                             min_object_size=0, **inputs.options)[best.threshold]
        own = (np.asarray(prepared["extent"]) != 0) & ~_claimed(evaluation.outlines[:position], grid, srs, common)
        ((objects, _),) = _tile_variants(np.asarray(prepared["binarized_segmentation"]), [best.min_object_size],
                                         settings.size_connectivity)
        del prepared
        false = own & np.isin(objects.label_image(np.int32), wanted[position])
        fields, geometries = object_features(false, grid.geotransform, srs, inputs.probabilities,
                                             lookup=inputs.lookup())
        to_target = osr.CoordinateTransformation(srs, target)
        for geometry in geometries:
            geometry.Transform(to_target)
        fields = {"tile_id": [source.tile_id] * len(geometries), **fields}
        write_layer(path, layer_name, target, fields, geometries, append=created, layout=Layout(tags=tags or {}),
                    feature_ids=None)
        created, written = True, written + len(geometries)
    if not created:
        write_layer(path, layer_name, target, {"tile_id": [], "Region_ID": [], "npixel": []}, [],
                    layout=Layout(tags=tags or {}), feature_ids=None)
    report(1.0, "False positives written")
    return written


def reference_polygons(source: str, layer: str | None, where: str | None, fids: Sequence[int]):
    """(an in-memory OGR dataset whose layer 'polygons' holds the reference slumps `fids` in the
    layer's own CRS, feature i with burn_id i + 1 and its source FID, as write_missed reads
    them; the layer's CRS as WKT)."""
    from ..files.exclusion import crs_of, open_polygons
    from ..files.gdal import osgeo

    gdal, ogr, _ = osgeo()
    with open_polygons(source, layer, where, "reference") as (polygons, _):
        srs = crs_of(polygons)
        memory = gdal.GetDriverByName("Memory").Create("", 0, 0, 0, gdal.GDT_Unknown)
        target = memory.CreateLayer("polygons", srs, ogr.wkbUnknown)
        target.CreateField(ogr.FieldDefn("burn_id", ogr.OFTInteger))
        for number, fid in enumerate(fids, start=1):
            feature = polygons.GetFeature(fid)
            copy = ogr.Feature(target.GetLayerDefn())
            copy.SetGeometry(feature.GetGeometryRef().Clone())
            copy.SetFID(fid)
            copy.SetField("burn_id", number)
            target.CreateFeature(copy)
    return memory, srs.ExportToWkt() if srs is not None else ""
