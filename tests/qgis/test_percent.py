"""DARTS' uint8 percent at a threshold through the plugin: a pixel stored as 50 passes 0.5
(v >= 100 t), in memory and block by block, in prepareexport, binarize and THRESHOLDS, as
the reference computes it on the raw percent values; a raster carrying DARTS' export tags
gets a log line saying it was postprocessed already."""

import numpy as np
import pytest
import reference
from darts_postprocessing.core.files.geotiff import write_geotiff
from osgeo import gdal
from rasters import read
from feedback import Log

gdal.UseExceptions()
SIZE = 600  # with MEMORY_LIMIT=1 (MB) several blocks


def write(path, array, nodata=None, tags=None):
    """A uint8 GeoTIFF in UTM 6N (the core's writer)."""
    write_geotiff(str(path), array, (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0), "EPSG:32606", nodata, tags=tags)
    return str(path)


@pytest.fixture()
def percent_tile(tmp_path):
    """uint8 percent with many pixels at exactly 50 and 40, nodata 255 in a corner, and a
    0/1/2 quality mask."""
    rng = np.random.default_rng(7)
    percent = rng.choice(np.array([0, 10, 39, 40, 41, 49, 50, 51, 80], np.uint8), size=(SIZE, SIZE),
                         p=[.3, .1, .05, .1, .05, .1, .15, .1, .05])
    percent[40:90, 40:90] = 50  # one object made of 50s only
    percent[:30, :30] = 255
    quality = np.full((SIZE, SIZE), 2, np.uint8)
    quality[300:320, :] = 1
    quality[500:, 500:] = 0
    folder = tmp_path / "input"
    folder.mkdir()
    return {"probabilities": write(folder / "probabilities.tif", percent, nodata=255), "percent": percent,
            "quality": write(folder / "quality_data_mask.tif", quality), "quality_array": quality}


@pytest.mark.parametrize("blocks", [False, True], ids=["memory", "blocks"])
def test_prepareexport_keeps_pixels_stored_as_50_at_threshold_0_5(provider, percent_tile, tmp_path, blocks):
    from qgis import processing

    out = tmp_path / "out"
    parameters = {"PROBABILITIES": percent_tile["probabilities"], "QUALITY_MASK": percent_tile["quality"],
                  "THRESHOLD": 0.5, "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 5, "QUALITY_LEVEL": "low_quality",
                  "OUTPUT_BINARIZED": str(out / "binarized.tif"), "OUTPUT_EXTENT": str(out / "extent.tif"),
                  **({"MEMORY_LIMIT": 1} if blocks else {})}
    processing.run("darts:prepareexport", parameters)
    extent, expected, _ = reference.prepare_export(percent_tile["percent"], percent_tile["quality_array"], 0.5, 3, 5,
                                                   "low_quality")
    binarized = read(out / "binarized.tif")
    np.testing.assert_array_equal(binarized, expected)
    assert binarized[40:90, 40:90].all()  # the object of 50s: v / 100 > 0.5 would have dropped it
    np.testing.assert_array_equal(read(out / "extent.tif"), extent)


@pytest.mark.parametrize("blocks", [False, True], ids=["memory", "blocks"])
def test_binarize_and_thresholds_use_the_percent_rule(provider, percent_tile, tmp_path, blocks):
    from qgis import processing

    extra = {"MEMORY_LIMIT": 1} if blocks else {}
    processing.run("darts:binarize", {"PROBABILITIES": percent_tile["probabilities"], "THRESHOLD": 0.4,
                                      "MIN_OBJECT_SIZE": 3, "OUTPUT": str(tmp_path / "b.tif"), **extra})
    valid = np.ones((SIZE, SIZE), np.uint8)
    np.testing.assert_array_equal(read(tmp_path / "b.tif"),
                                  reference.binarize(percent_tile["percent"], 0.4, 3, valid))
    processing.run("darts:prepareexport", {
        "PROBABILITIES": percent_tile["probabilities"], "QUALITY_MASK": percent_tile["quality"], "THRESHOLDS": "0.4,0.5",
        "MASK_EROSION_SIZE": 2, "MIN_OBJECT_SIZE": 4, "OUTPUT_BINARIZED": str(tmp_path / "t.tif"),
        "OUTPUT_EXTENT": str(tmp_path / "e.tif"), **extra})
    for threshold in (0.4, 0.5):
        _, expected, _ = reference.prepare_export(percent_tile["percent"], percent_tile["quality_array"], threshold, 2, 4,
                                                  "low_quality")
        np.testing.assert_array_equal(read(tmp_path / f"t-t{threshold:.2f}.tif"), expected)


def test_a_darts_export_says_it_was_postprocessed_already(provider, percent_tile, tmp_path):
    from qgis import processing

    tags = {"DARTS_tileid": "20240715T213529_20240715T213531_T07WET", "DARTS_maskerosion": "10",
            "DARTS_edgeerosion": "10", "DARTS_binarizethreshold": "0.5"}
    exported = write(tmp_path / "probabilities.tif", percent_tile["percent"], nodata=255, tags=tags)
    log = Log(infos=False)
    processing.run("darts:prepareexport", {"PROBABILITIES": exported, "OUTPUT_BINARIZED": str(tmp_path / "o" / "b.tif"),
                                           "OUTPUT_EXTENT": str(tmp_path / "o" / "e.tif")}, feedback=log)
    assert any("postprocessed already" in line and "erosion 10" in line for line in log.lines), log.lines
    plain = Log(infos=False)
    processing.run("darts:prepareexport", {"PROBABILITIES": percent_tile["probabilities"],
                                           "OUTPUT_BINARIZED": str(tmp_path / "p" / "b.tif"),
                                           "OUTPUT_EXTENT": str(tmp_path / "p" / "e.tif")}, feedback=plain)
    assert not any("postprocessed already" in line for line in plain.lines)
