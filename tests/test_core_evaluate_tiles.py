"""evaluate over several tiles (core/evaluate.py, evaluate_tiles) on real tile folders: a slump
split by a tile border is one slump and one object, overlapping tiles count each place once,
tiles equal the mosaic where the mosaic is the same map, DARTS' tile folders across two UTM
zones, and one-line errors."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("osgeo", reason="GDAL's Python bindings (Debian's python3-gdal) read the tiles")

from osgeo import gdal, ogr, osr  # noqa: E402

from darts_postprocessing.core.regions.evaluate import evaluate, evaluate_tiles, reference_raster  # noqa: E402
from darts_postprocessing.core.files.geotiff import write_geotiff  # noqa: E402
from darts_postprocessing.core.regions.tiles import TileSettings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # sample_region, for darts_folders
gdal.UseExceptions()
UTM = "EPSG:32606"
X0, Y0, PIXEL = 500000.0, 7000000.0, 10.0
SCORES = ("pixel_tp", "pixel_fp", "pixel_fn", "pixel_tn", "predicted_objects", "reference_slumps", "object_tp",
          "object_fp", "object_fn", "found", "object_f1", "pixel_iou")
CLIP = TileSettings(mask_erosion_size=0, edge_erosion_size=0, quality_level="low_quality", boundary="clip")


def srs_of(code):
    srs = osr.SpatialReference()
    srs.SetFromUserInput(code)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def write_tile(folder, probabilities, col0, quality=None, row0=0, extent=None):
    """A tile folder: probabilities.tif (float32, NaN none) of the mosaic's columns from `col0`,
    with quality_data_mask.tif (all high quality unless given) or extent.tif."""
    os.makedirs(folder, exist_ok=True)
    transform = (X0 + col0 * PIXEL, PIXEL, 0.0, Y0 - row0 * PIXEL, 0.0, -PIXEL)
    write_geotiff(os.path.join(folder, "probabilities.tif"), np.asarray(probabilities, np.float32), transform, UTM)
    if extent is not None:
        write_geotiff(os.path.join(folder, "extent.tif"), np.asarray(extent, np.uint8), transform, UTM)
    else:
        quality = np.full(np.shape(probabilities), 2, np.uint8) if quality is None else quality
        write_geotiff(os.path.join(folder, "quality_data_mask.tif"), np.asarray(quality, np.uint8), transform, UTM)
    return folder


def write_reference(path, rectangles, crs="EPSG:4326"):
    """Rectangles (rows, cols) of the mosaic's grid as reference polygons stored in `crs`."""
    transform = osr.CoordinateTransformation(srs_of(UTM), srs_of(crs))
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("slumps", srs_of(crs), ogr.wkbPolygon)
    for rows, cols in rectangles:
        x0, x1 = X0 + cols[0] * PIXEL, X0 + cols[1] * PIXEL
        y0, y1 = Y0 - rows[0] * PIXEL, Y0 - rows[1] * PIXEL
        geometry = ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
        geometry.Segmentize(PIXEL)
        geometry.Transform(transform)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    dataset = None
    return str(path)


def rows_of(evaluation):
    return [(s.threshold, s.min_object_size, {name: s.scores[name] for name in SCORES}) for s in evaluation.settings]


def mosaic_evaluation(probabilities, reference_path, thresholds, sizes, quality=None, **options):
    """evaluate on the mosaic as one raster (the reference burnt onto its grid)."""
    shape = probabilities.shape
    ids, polygons = reference_raster(reference_path, shape, (X0, PIXEL, 0.0, Y0, 0.0, -PIXEL), UTM)
    quality = np.full(shape, 2, np.uint8) if quality is None else quality
    tile = {"probabilities": probabilities.astype(np.float32), "quality_data_mask": quality}
    count = polygons.GetLayerByName("polygons").GetFeatureCount()
    return evaluate(tile, ids, thresholds, sizes, reference_count=count, mask_erosion_size=0, edge_erosion_size=0,
                    quality_level="low_quality", boundary="clip", **options)


def box(shape, rows, cols, value=0.9):
    out = np.zeros(shape, np.float32)
    out[rows[0]:rows[1], cols[0]:cols[1]] = value
    return out


def test_a_slump_split_by_the_tile_border_is_one_slump_and_one_object(tmp_path):
    shape = (40, 80)
    probabilities = box(shape, (10, 20), (30, 50)) + box(shape, (25, 30), (36, 40))  # matched; one false positive
    probabilities[30, 40] = 0.9  # touches the false positive at a corner only, across the border: one object
    reference = write_reference(tmp_path / "reference.gpkg", [((10, 20), (30, 50)), ((2, 6), (60, 70))])
    write_tile(tmp_path / "tiles" / "left", probabilities[:, :40], 0)
    write_tile(tmp_path / "tiles" / "right", probabilities[:, 40:], 40)
    tiles = evaluate_tiles(tmp_path / "tiles", (reference, None, None), [0.5], [0], settings=CLIP)
    (setting,) = tiles.settings
    scores = setting.scores
    assert (scores["reference_slumps"], scores["predicted_objects"]) == (2, 2)
    assert (scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (1, 1, 1)
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"]) == (200, 21, 40)
    assert tiles.extent_pixels == 40 * 80 and tiles.tile_pixels == [1600, 1600]
    assert tiles.missed().tolist() == [2] and tiles.reference_fids == [1, 2]
    assert rows_of(tiles) == rows_of(mosaic_evaluation(probabilities, reference, [0.5], [0]))
    assert tiles.false_positive_labels().keys() == {0, 1}  # the false positive has a part in each tile
    from darts_postprocessing.core.regions.evaluate import reference_polygons, write_missed, write_tile_false_positives

    assert write_tile_false_positives(str(tmp_path / "fp.gpkg"), "fp", tiles, "EPSG:3413") == 2
    dataset = ogr.Open(str(tmp_path / "fp.gpkg"))
    layer = dataset.GetLayer(0)
    assert sorted((f.GetField("tile_id"), f.GetField("npixel")) for f in layer) == [("left", 20), ("right", 1)]
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "3413"
    dataset = None
    polygons, crs = reference_polygons(reference, None, None, tiles.reference_fids)
    assert write_missed(str(tmp_path / "missed.gpkg"), "missed", polygons, tiles.missed(), tiles, crs) == 1
    dataset = ogr.Open(str(tmp_path / "missed.gpkg"))
    (feature,) = list(dataset.GetLayer(0))
    assert (feature.GetField("reference_fid"), feature.GetField("npixel"), feature.GetField("overlapped")) == (2, 40, 0)
    dataset = None


def test_overlapping_tiles_count_each_place_once_and_equal_the_mosaic(tmp_path):
    rng = np.random.default_rng(4)
    shape = (60, 100)
    probabilities = rng.random(shape).astype(np.float32) * 0.45
    for rows, cols in (((5, 20), (30, 55)), ((30, 45), (40, 48)), ((40, 55), (70, 90)), ((8, 16), (5, 15))):
        probabilities += box(shape, rows, cols, 0.5)
    probabilities[50:52, 2:4] = np.nan  # no prediction: outside the extent
    rectangles = [((5, 20), (30, 55)), ((30, 45), (40, 50)), ((42, 55), (70, 90)), ((20, 28), (60, 66))]
    reference = write_reference(tmp_path / "reference.gpkg", rectangles, crs="EPSG:3413")
    quality = np.where(rng.random(shape) < 0.02, 0, 2).astype(np.uint8)
    quality[:, 95:] = 0
    # three tiles overlapping by 20 and 15 columns, the last one also shifted by 10 rows
    write_tile(tmp_path / "tiles" / "a", probabilities[:, :50], 0, quality[:, :50])
    write_tile(tmp_path / "tiles" / "b", probabilities[:, 30:80], 30, quality[:, 30:80])
    write_tile(tmp_path / "tiles" / "c", probabilities[10:, 65:], 65, quality[10:, 65:], row0=10)
    write_tile(tmp_path / "tiles" / "d", probabilities[:10, 60:], 60, quality[:10, 60:])
    thresholds, sizes = [0.4, 0.5, 0.6, 0.8], [0, 10]
    tiles = evaluate_tiles(tmp_path / "tiles", (reference, None, None), thresholds, sizes,
                           settings=TileSettings(mask_erosion_size=0, edge_erosion_size=0, quality_level=1,
                                                 boundary="clip", size_connectivity=8))
    mosaic = mosaic_evaluation(probabilities, reference, thresholds, [0], quality)
    assert tiles.extent_pixels == mosaic.extent_pixels == int((quality > 0).sum())
    assert [row for row in rows_of(tiles) if row[1] == 0] == rows_of(mosaic)
    assert tiles.best.scores["object_tp"] > 0
    # a larger minimum size selects whole objects in each tile (here none is cut by a tile's edge)
    assert all(row[2]["reference_slumps"] == 4 for row in rows_of(tiles))


def digitized(path, slumps):
    """Round reference slumps (x, y, radius in EPSG:3413 metres) as polygons in EPSG:3413."""
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("slumps", srs_of("EPSG:3413"), ogr.wkbPolygon)
    for x, y, radius in slumps:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})").Buffer(radius, 32))
        layer.CreateFeature(feature)
    dataset = None
    return str(path)


def test_darts_tile_folders_equal_their_mosaic(tmp_path):
    """Two DARTS tile folders (tests/darts_folders.py: uint8 percent, nodata outside the exported
    extent, prediction_extent.gpkg, each with its own 10 px edge band) cut from one grid with 40
    columns of overlap, against a VRT mosaic of their probabilities with the first tile on top:
    the mosaic's valid pixels are the first tile's extent and the second's beyond it, which is
    the rule of evaluate_tiles, so every score is the same, slumps across the seam included."""
    from darts_folders import write_darts_tile

    rng = np.random.default_rng(7)
    shape = (120, 200)
    percent = (rng.random(shape) * 45).astype(np.uint8)
    for rows, cols in (((20, 40), (100, 125)), ((60, 64), (104, 118)), ((70, 90), (30, 50)), ((90, 100), (150, 170)),
                       ((15, 25), (60, 61))):
        percent[rows[0]:rows[1], cols[0]:cols[1]] = rng.integers(50, 95)
    quality = np.full(shape, 2, np.uint8)
    quality[95:110, 20:40] = 0  # a cloud
    folders = {}
    for name, cols in (("A_20240715T213529_20240715T213531_T07WET", (0, 120)),
                       ("B_20240716T213529_20240716T213531_T07WET", (80, 200))):
        source = tmp_path / "drawn" / f"{name}.tif"
        source.parent.mkdir(exist_ok=True)
        transform = (X0 + cols[0] * PIXEL, PIXEL, 0.0, Y0, 0.0, -PIXEL)
        write_geotiff(str(source), percent[:, cols[0]:cols[1]], transform, "EPSG:32607", nodata=255)
        folders[name] = write_darts_tile(str(tmp_path / "run" / name), str(source), quality[:, cols[0]:cols[1]], name)
    mosaic_file = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(mosaic_file, [os.path.join(folders[name], "probabilities.tif") for name in sorted(folders)[::-1]])
    raw = gdal.Open(mosaic_file).ReadAsArray()
    rectangles = [((20, 40), (100, 125)), ((60, 66), (104, 118)), ((70, 90), (25, 50)), ((5, 12), (150, 160))]
    global UTM
    utm, UTM = UTM, "EPSG:32607"
    try:
        reference = write_reference(tmp_path / "reference.gpkg", rectangles)
        probabilities = np.where(raw == 255, np.nan, raw / np.float32(100)).astype(np.float32)
        thresholds = [0.3, 0.5, 0.7]
        mosaic = mosaic_evaluation(probabilities, reference, thresholds, [0], np.where(raw == 255, 0, 2).astype(np.uint8),
                                   probability_scale="percent")
    finally:
        UTM = utm
    tiles = evaluate_tiles(tmp_path / "run", (reference, None, None), thresholds, [0],
                           settings=TileSettings(boundary="clip"))
    assert [source.tile_id for source in tiles.sources] == sorted(folders)
    assert tiles.extent_pixels == mosaic.extent_pixels == int((raw != 255).sum())
    assert rows_of(tiles) == rows_of(mosaic)
    best = tiles.settings[1].scores  # at 0.5: the slump across the seam is matched once, from two tiles' parts
    assert (best["reference_slumps"], best["object_tp"]) == (4, 3)
    assert any(len(labels) for labels, _ in tiles.best_objects_of[1:])


def test_a_region_across_two_utm_zones(tmp_path):
    """The test region's tiles (scripts/sample_region.py: tile A in UTM 7N, B and C in 8N, which
    overlap A; extent.tif with a 10 px edge band) and one more slump across A's extent edge,
    inside B: it is cut between A (first in id order) and B, whose parts on their two grids are
    joined into one object. Every slump is counted once and found pixel for pixel."""
    import sample_region as scene

    info = scene.region(str(tmp_path / "first"), mask="extent")
    slumps = dict(info["slumps"], across=(*scene.ground_of_pixel(info["tiles"]["tile_A"], 120, 289.5), 60.0))
    for spec in info["tiles"].values():
        scene.draw_tile(spec, slumps.values(), str(tmp_path / "tiles"))
    reference = digitized(tmp_path / "digitized.gpkg", slumps.values())
    tiles = evaluate_tiles(tmp_path / "tiles", (reference, None, None), [0.5], [0, 32],
                           settings=TileSettings(boundary="clip"))
    for setting in tiles.settings:
        scores = setting.scores
        assert scores["reference_slumps"] == len(slumps)
        assert (scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (len(slumps), 0, 0)
        assert scores["pixel_fp"] == scores["pixel_fn"] == 0
    objects = np.concatenate([objects for _, objects in tiles.best_objects_of])
    assert objects.size == len(slumps) + 1 and np.unique(objects).size == len(slumps)  # one of two tiles' parts
    # boundary "remove" (the rule's known cost): A removes the slump touching its extent's edge, so its part on
    # A's side counts as missed pixels, and B's part alone is too small a match: one miss and one false positive
    removed = evaluate_tiles(tmp_path / "tiles", (reference, None, None), [0.5], [0],
                             settings=TileSettings(boundary="remove")).settings[0].scores
    assert removed["reference_slumps"] == len(slumps)
    assert (removed["object_tp"], removed["object_fp"], removed["object_fn"]) == (len(slumps) - 1, 1, 1)
    assert removed["pixel_fp"] == 0 and removed["pixel_fn"] > 0


def test_a_darts_run_folder(tmp_path):
    """A DARTS output folder (tests/darts_folders.py: its _metadata_* folder and run files beside
    the tiles of two UTM zones) against the drawn slumps in EPSG:3413: each slump once, all found."""
    from darts_folders import darts_run

    run = darts_run(tmp_path / "run", years=(2024,))
    reference = digitized(tmp_path / "digitized.gpkg", run["slumps"][2024].values())
    tiles = evaluate_tiles(tmp_path / "run", (reference, None, None), [0.5], [0], settings=TileSettings(boundary="clip"))
    (setting,) = tiles.settings
    scores = setting.scores
    assert len(tiles.sources) == 3
    assert scores["reference_slumps"] == len(run["slumps"][2024])
    assert (scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (scores["reference_slumps"], 0, 0)
    assert scores["pixel_fp"] == scores["pixel_fn"] == 0


def test_tiles_of_several_years_need_the_reference_year(tmp_path):
    """A DARTS folder of two yearly runs: without a year the scores would mix the years (an
    error that lists them); with the reference's year only that year's tiles count, and they
    score as that year's folder alone."""
    from darts_folders import darts_run

    run = darts_run(tmp_path / "run", years=(2019, 2024))
    reference = digitized(tmp_path / "digitized.gpkg", run["slumps"][2019].values())
    with pytest.raises(ValueError, match=r"the tiles are of several years \(2019: 3 tiles, 2024: 3 tiles\): give the "
                                         r"year of the reference slumps \(YEAR\)"):
        evaluate_tiles(tmp_path / "run", (reference, None, None), [0.5], [0], settings=CLIP)
    with pytest.raises(ValueError, match=r"no tile of 2021 \(2019: 3 tiles, 2024: 3 tiles\)"):
        evaluate_tiles(tmp_path / "run", (reference, None, None), [0.5], [0], settings=CLIP, year=2021)
    of_2019 = evaluate_tiles(tmp_path / "run", (reference, None, None), [0.5], [0], settings=CLIP, year=2019)
    assert len(of_2019.sources) == 3 and all("2019" in source.tile_id or "2019" in source.folder
                                             for source in of_2019.sources)
    alone = darts_run(tmp_path / "alone", years=(2019,))
    assert alone["slumps"][2019] == run["slumps"][2019]
    expected = evaluate_tiles(tmp_path / "alone", (reference, None, None), [0.5], [0], settings=CLIP)
    assert {k: v for k, v in of_2019.settings[0].row().items() if k != "seconds"} == \
        {k: v for k, v in expected.settings[0].row().items() if k != "seconds"}
    assert of_2019.settings[0].scores["object_tp"] == len(run["slumps"][2019])


def test_errors_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    (empty / "_metadata").mkdir(parents=True)
    reference = write_reference(tmp_path / "reference.gpkg", [((2, 8), (3, 9))])
    with pytest.raises(ValueError, match="no tile found in .*a tile is a folder with probabilities.tif"):
        evaluate_tiles(empty, (reference, None, None), [0.5], [0])
    write_tile(tmp_path / "tiles" / "a", np.zeros((20, 20)), 0)
    far = write_reference(tmp_path / "far.gpkg", [((2000, 2008), (3, 9))])
    with pytest.raises(ValueError, match="none of the 1 reference slumps lies on any of the 1 tiles"):
        evaluate_tiles(tmp_path / "tiles", (far, None, None), [0.5], [0])
    outside = tmp_path / "outside"
    write_tile(outside / "a", np.zeros((20, 20)), 0, quality=np.where(np.arange(20) < 10, 2, 0)[None, :].repeat(20, 0))
    right = write_reference(tmp_path / "right.gpkg", [((2, 8), (13, 19))])
    with pytest.raises(ValueError, match="none of the 1 reference slumps has a pixel inside the valid extent of any"):
        evaluate_tiles(outside, (right, None, None), [0.5], [0], settings=CLIP)
