"""darts:polygonize, darts:exporttile, darts:qualitymask and prepareexport's polygons and
report, through processing.run on real files, checked against numpy and the core."""

import os
import re

import numpy as np
import pytest
import reference
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException, QgsProject, QgsVectorLayer, QgsWkbTypes
from rasters import expected_on_sample, read, read_percent
from reading import open_read_only
from sample_tile import write_tif
from vectors import features

gdal.UseExceptions()


def prepare(sample, tmp_path, **extra):
    parameters = {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "THRESHOLD": 0.5,
                  "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 20, "QUALITY_LEVEL": "low_quality",
                  "OUTPUT_BINARIZED": str(tmp_path / "binarized.tif"), "OUTPUT_EXTENT": str(tmp_path / "extent.tif"),
                  **extra}
    return processing.run("darts:prepareexport", parameters)


def test_polygonize_matches_the_raster_objects(provider, sample, tmp_path):
    binarized = prepare(sample, tmp_path)["OUTPUT_BINARIZED"]
    output = processing.run("darts:polygonize", {"BINARIZED": binarized, "PROBABILITIES": sample["probabilities"],
                                                 "OUTPUT": str(tmp_path / "slumps.gpkg")})["OUTPUT"]
    labels, table = reference.object_table(read(binarized), read_percent(sample["probabilities"]))
    name, rows = features(output)
    assert name == "slumps" and len(rows) == labels.max() > 3
    for index, (attributes, geometry) in enumerate(rows):
        assert attributes["Region_ID"] == index + 1 and geometry.IsValid()
        assert attributes["npixel"] == table["npixel"][index]
        assert attributes["area_m2"] == pytest.approx(geometry.GetArea()) == table["npixel"][index] * 100.0
        for statistic in ("min", "max", "mean", "median", "std"):
            assert attributes[statistic] == pytest.approx(table[statistic][index], rel=1e-6), statistic
            assert 0 <= attributes[statistic] <= 1
    layer = QgsVectorLayer(output, "slumps", "ogr")
    assert layer.isValid() and layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry
    assert layer.crs().authid() == "EPSG:32606"


def test_polygonize_hand_made_holes_and_diagonals(provider, tmp_path):
    binary = np.zeros((30, 30), np.uint8)
    binary[2:12, 2:12] = 1
    binary[5:8, 5:8] = 0                       # a 3x3 hole
    binary[12, 12] = binary[13, 13] = 1        # diagonal tail: same object
    binary[20, 20] = binary[21, 21] = binary[20, 22] = 1   # a V of diagonal pixels: one object
    path = str(tmp_path / "hand.tif")
    write_tif(path, binary)
    output = processing.run("darts:polygonize", {"BINARIZED": path, "OUTPUT": str(tmp_path / "hand.gpkg")})["OUTPUT"]
    _, rows = features(output)
    assert [(a["Region_ID"], a["npixel"]) for a, _ in rows] == [(1, 93), (2, 3)]
    square, vee = rows[0][1], rows[1][1]
    assert square.IsValid() and vee.IsValid() and square.GetGeometryCount() == 3 and vee.GetGeometryCount() == 3
    holes = [square.GetGeometryRef(i).GetGeometryCount() - 1 for i in range(square.GetGeometryCount())]
    assert sorted(holes) == [0, 0, 1] and square.GetArea() == 93 * 100
    assert set(rows[0][0]) == {"Region_ID", "npixel", "area_m2"}


def test_polygonize_refuses_probabilities_and_other_formats(provider, sample, tmp_path):
    with pytest.raises(QgsProcessingException, match="other than 0 and 1"):
        processing.run("darts:polygonize", {"BINARIZED": sample["probabilities"], "OUTPUT": str(tmp_path / "x.gpkg")})
    binarized = prepare(sample, tmp_path)["OUTPUT_BINARIZED"]
    with pytest.raises(QgsProcessingException, match="GeoPackage"):
        processing.run("darts:polygonize", {"BINARIZED": binarized, "OUTPUT": str(tmp_path / "x.shp")})
    assert not [f for f in os.listdir(tmp_path) if f.startswith("x.") or "partial" in f]


def number(page, key):
    return float(re.search(rf'id="{key}">([^<]+)<', page).group(1))


def test_prepareexport_polygons_and_report(provider, sample, tmp_path):
    results = prepare(sample, tmp_path, OUTPUT_POLYGONS=str(tmp_path / "objects.gpkg"),
                      OUTPUT_REPORT=str(tmp_path / "report.html"))
    expected = expected_on_sample(sample, bin_threshold=0.5, mask_erosion_size=3, min_object_size=20, quality_level=1)
    counts = reference.object_counts(read(sample["probabilities"]), 0.5, 20, expected["extent"])  # raw percent
    labels, table = reference.object_table(expected["binarized_segmentation"])
    _, rows = features(results["OUTPUT_POLYGONS"])
    assert len(rows) == labels.max() > 0
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    assert number(page, "objects") == counts["objects"]
    assert number(page, "removed_at_boundary") == counts["removed_at_boundary"] > 0
    assert number(page, "removed_too_small") == counts["removed_too_small"] > 0
    removed = counts["removed_at_boundary"] + counts["removed_too_small"]
    assert number(page, "kept_objects") == labels.max() == counts["objects"] - removed
    assert number(page, "kept_pixels") == expected["binarized_segmentation"].sum()
    assert number(page, "kept_area_m2") == pytest.approx(expected["binarized_segmentation"].sum() * 100.0)
    assert number(page, "extent_pixels") == expected["extent"].sum()
    assert 'src="data:image/png;base64,' in page and "min_object_size" in page and sample["quality"] in page


def test_exporttile_writes_a_darts_folder(provider, sample, tmp_path):
    prepared = prepare(sample, tmp_path)
    folder = tmp_path / "tile"
    results = processing.run("darts:exporttile", {"PROBABILITIES": sample["probabilities"],
                                                  "BINARIZED": prepared["OUTPUT_BINARIZED"],
                                                  "EXTENT": prepared["OUTPUT_EXTENT"], "OUTPUT_FOLDER": str(folder)})
    from darts_postprocessing.core.files.geoparquet import geoparquet_support

    twins = ["prediction_segments.parquet", "prediction_extent.parquet"] if geoparquet_support()[0] else []
    assert sorted(os.listdir(folder)) == sorted(["probabilities.tif", "binarized.tif", "extent.tif", "quicklook.png",
                                                 "prediction_segments.gpkg", "prediction_extent.gpkg", "thumbnail.jpg",
                                                 "darts_inference.json", *twins])
    extent = read(prepared["OUTPUT_EXTENT"])
    source = read(sample["probabilities"])
    with open_read_only(results["OUTPUT_PROBABILITIES"]) as written:
        assert written.GetRasterBand(1).GetNoDataValue() == 255
        assert written.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "LZW"
        np.testing.assert_array_equal(written.ReadAsArray(), np.where(extent == 1, source, 255))  # percent kept as is
    np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), read(prepared["OUTPUT_BINARIZED"]))
    np.testing.assert_array_equal(read(results["OUTPUT_EXTENT"]), extent)
    assert features(results["OUTPUT_SEGMENTS"])[0] == "prediction_segments"
    assert features(results["OUTPUT_EXTENT_POLYGONS"])[0] == "prediction_extent"
    # The written probabilities read back through the plugin's own percent detection.
    again = processing.run("darts:prepareexport", {
        "PROBABILITIES": results["OUTPUT_PROBABILITIES"], "QUALITY_MASK": sample["quality"], "THRESHOLD": 0.5,
        "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 20, "QUALITY_LEVEL": "low_quality",
        "OUTPUT_BINARIZED": str(tmp_path / "again.tif"), "OUTPUT_EXTENT": str(tmp_path / "again-extent.tif")})
    np.testing.assert_array_equal(read(again["OUTPUT_BINARIZED"]), read(prepared["OUTPUT_BINARIZED"]))


def test_exporttile_from_float_probabilities_truncates_percent(provider, tmp_path):
    from sample_tile import sample_arrays

    probabilities, quality = sample_arrays(120, 3)
    paths = {name: str(tmp_path / f"{name}.tif") for name in ("p", "b", "e")}
    write_tif(paths["p"], probabilities, nodata=float("nan"))
    extent = (quality > 0).astype(np.uint8)
    write_tif(paths["e"], extent)
    write_tif(paths["b"], ((np.nan_to_num(probabilities) > 0.6) & (extent == 1)).astype(np.uint8))
    results = processing.run("darts:exporttile", {"PROBABILITIES": paths["p"], "BINARIZED": paths["b"],
                                                  "EXTENT": paths["e"], "OUTPUT_FOLDER": str(tmp_path / "tile")})
    expected = np.where(np.isnan(probabilities) | (extent == 0), 255,
                        (np.nan_to_num(probabilities) * np.float32(100)).astype(np.uint8))
    np.testing.assert_array_equal(read(results["OUTPUT_PROBABILITIES"]), expected)


def test_exporttile_never_overwrites_its_inputs(provider, sample, tmp_path):
    prepared = prepare(sample, tmp_path)  # writes binarized.tif and extent.tif into tmp_path
    before = open(prepared["OUTPUT_BINARIZED"], "rb").read()
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:exporttile", {"PROBABILITIES": sample["probabilities"],
                                            "BINARIZED": prepared["OUTPUT_BINARIZED"],
                                            "EXTENT": prepared["OUTPUT_EXTENT"], "OUTPUT_FOLDER": str(tmp_path)})
    assert open(prepared["OUTPUT_BINARIZED"], "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["binarized.tif", "extent.tif", "input"]


def test_qualitymask_scl_class_by_class(provider, tmp_path):
    scl = np.arange(12, dtype=np.uint8).reshape(3, 4)  # other values are refused (test_nothing_silently_wrong)
    path = str(tmp_path / "scl.tif")
    write_tif(path, scl)
    out = processing.run("darts:qualitymask", {"INPUT": path, "SOURCE": "scl", "OUTPUT": str(tmp_path / "q.tif")})
    expected = {0: 0, 1: 0, 2: 2, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 1, 9: 1, 10: 2, 11: 1}
    quality = read(out["OUTPUT"])
    assert {c: int(quality.flat[c]) for c in expected} == expected
    np.testing.assert_array_equal(quality, reference.quality_from_scl(scl))


def test_qualitymask_udm2_and_observations(provider, tmp_path):
    udm2 = np.zeros((8, 2, 4), np.uint8)
    udm2[0] = 1                   # clear everywhere
    udm2[5, 0, 1] = 1             # cloud (band 6) -> low
    udm2[1, 0, 2] = 1             # snow (band 2) -> low
    udm2[7, 0, 2] = 1             # ... but unusable (band 8) -> invalid
    udm2[6, 1, :] = 90            # confidence (band 7) never matters
    udm2[2, 1, 3] = 1             # shadow (band 3) -> low
    path = str(tmp_path / "udm2.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 4, 2, 8, gdal.GDT_Byte)
    dataset.SetGeoTransform((600000, 3, 0, 7800000, 0, -3))
    for band in range(8):
        dataset.GetRasterBand(band + 1).WriteArray(udm2[band])
    dataset = None
    out = processing.run("darts:qualitymask", {"INPUT": path, "SOURCE": "udm2", "OUTPUT": str(tmp_path / "q.tif")})
    np.testing.assert_array_equal(read(out["OUTPUT"]), [[2, 1, 0, 2], [2, 2, 2, 1]])
    with pytest.raises(QgsProcessingException, match="1 bands, but 8"):
        counts = str(tmp_path / "counts.tif")
        write_tif(counts, np.array([[0, 1, 3, 4], [7, 65535 % 256, 2, 0]], np.uint8), nodata=255)
        processing.run("darts:qualitymask", {"INPUT": counts, "SOURCE": "udm2", "OUTPUT": str(tmp_path / "x.tif")})
    out = processing.run("darts:qualitymask", {"INPUT": counts, "SOURCE": "observations",
                                               "OUTPUT": str(tmp_path / "q2.tif")})
    np.testing.assert_array_equal(read(out["OUTPUT"]), [[0, 1, 1, 2], [2, 0, 1, 0]])  # 255 = nodata -> 0


def test_polygons_load_styled(provider, sample, tmp_path):
    binarized = prepare(sample, tmp_path)["OUTPUT_BINARIZED"]
    project = QgsProject.instance()
    project.removeAllMapLayers()
    processing.runAndLoadResults("darts:polygonize", {"BINARIZED": binarized, "OUTPUT": str(tmp_path / "p.gpkg")})
    (layer,) = project.mapLayers().values()
    symbol = layer.renderer().symbol()
    # no fill; a yellow line over a dark, wider halo: reads on the red objects and on imagery
    assert symbol.color().alpha() == 0 and symbol.symbolLayerCount() == 2
    halo, line = symbol.symbolLayer(0), symbol.symbolLayer(1)
    assert line.strokeColor().name() == "#ffdd00" and halo.strokeColor().lightness() < 40
    assert halo.strokeWidth() > line.strokeWidth()
    project.removeAllMapLayers()
