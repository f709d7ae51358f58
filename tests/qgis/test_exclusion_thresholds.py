"""EXCLUDE (a water mask as polygons in another CRS, as a raster, as a scratch layer) and
THRESHOLDS (several thresholds in one run) of darts:prepareexport, through processing.run and
qgis_process on real files, in memory and block by block, against the reference."""

import json
import os
import re

import numpy as np
import pytest
import reference
from osgeo import gdal, ogr, osr
from qgis import processing
from qgis.core import QgsFeature, QgsGeometry, QgsProcessingException, QgsProcessingFeedback, QgsVectorLayer
from qgis_cli import qgis_process
from rasters import read, read_percent
from reading import open_read_only
from reading import tags as dataset_tags
from sample_tile import EPSG, ORIGIN, PIXEL, write_sample_tile, write_tif
from vectors import features

gdal.UseExceptions()
ogr.UseExceptions()
OPTIONS = dict(THRESHOLD=0.5, MASK_EROSION_SIZE=3, MIN_OBJECT_SIZE=20, QUALITY_LEVEL="low_quality")
CORE = dict(erosion=3, min_size=20, level=1)
# Lakes and a river in pixel rows/columns of the 200 x 200 sample tile.
WATER = [((20, 120), (60, 140)), ((150, 200), (0, 90)), ((95, 99), (0, 200))]


def water_mask(shape=(200, 200), scale=1):
    mask = np.zeros(shape, np.uint8)
    for (r0, r1), (c0, c1) in WATER:
        mask[r0 * scale:r1 * scale, c0 * scale:c1 * scale] = 1
    return mask


def write_water(path, crs="EPSG:4326", layer="water", scale=1):
    """The WATER rectangles (times `scale`) as polygons (pixel edges of the sample's grid),
    stored in `crs`, plus a feature of another kind that `where` filters can leave out."""
    utm, target = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(EPSG)
    target.SetFromUserInput(crs)
    for srs in (utm, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(utm, target)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    polygons = dataset.CreateLayer(layer, target, ogr.wkbPolygon)
    polygons.CreateField(ogr.FieldDefn("kind", ogr.OFTString))
    for kind, ((r0, r1), (c0, c1)) in [("water", w) for w in WATER] + [("glacier", ((0, 200), (190, 200)))]:
        x0, x1 = ORIGIN[0] + c0 * scale * PIXEL, ORIGIN[0] + c1 * scale * PIXEL
        y0, y1 = ORIGIN[1] - r0 * scale * PIXEL, ORIGIN[1] - r1 * scale * PIXEL
        geometry = ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
        geometry.Segmentize(1.0)
        geometry.Transform(transform)
        feature = ogr.Feature(polygons.GetLayerDefn())
        feature.SetField("kind", kind)
        feature.SetGeometry(geometry)
        polygons.CreateFeature(feature)
    dataset = None
    return str(path)


def expected(sample, boundary="remove", threshold=0.5, exclude=None):
    percent = read(sample["probabilities"])  # DARTS' uint8 percent, thresholded as percent by the reference
    extent, binarized, masked = reference.prepare_export(percent, read(sample["quality"]), threshold,
                                                         boundary=boundary, exclude=exclude, **CORE)
    counts = reference.object_counts(percent, threshold, CORE["min_size"], extent, 8, exclude, boundary)
    return extent, binarized, counts


def number(page, key):
    return float(re.search(rf'id="{re.escape(key)}">([^<]+)<', page).group(1))


@pytest.mark.parametrize("boundary", ["remove", "clip"])
def test_water_polygons_in_another_crs_remove_or_clip_objects(provider, sample, tmp_path, boundary):
    water = write_water(tmp_path / "water.gpkg")
    out = tmp_path / "out"
    results = processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], **OPTIONS,
        "EXCLUDE": f"{water}|layername=water|subset=\"kind\" = 'water'", "BOUNDARY": boundary,
        "OUTPUT_BINARIZED": str(out / "b.tif"), "OUTPUT_EXTENT": str(out / "e.tif"),
        "OUTPUT_REPORT": str(out / "report.html")})
    extent, binarized, counts = expected(sample, boundary, exclude=water_mask())
    _, without, _ = expected(sample, boundary)
    assert counts["removed_excluded"] > 0 and without.sum() > binarized.sum()
    np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), binarized)
    np.testing.assert_array_equal(read(results["OUTPUT_EXTENT"]), extent)
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    for key, value in counts.items():
        assert number(page, key) == value, key
    assert "Removed: in the exclusion mask" in page and "layer water" in page


def test_a_raster_mask_and_a_scratch_layer_give_what_the_polygons_give(provider, sample, tmp_path):
    raster = str(tmp_path / "water.tif")
    write_tif(raster, water_mask())
    scratch = QgsVectorLayer(f"Polygon?crs=EPSG:{EPSG}", "drawn water", "memory")
    for (r0, r1), (c0, c1) in WATER:
        feature = QgsFeature()
        feature.setGeometry(QgsGeometry.fromWkt(
            f"POLYGON (({ORIGIN[0] + c0 * PIXEL} {ORIGIN[1] - r0 * PIXEL}, {ORIGIN[0] + c1 * PIXEL} {ORIGIN[1] - r0 * PIXEL}, "
            f"{ORIGIN[0] + c1 * PIXEL} {ORIGIN[1] - r1 * PIXEL}, {ORIGIN[0] + c0 * PIXEL} {ORIGIN[1] - r1 * PIXEL}, "
            f"{ORIGIN[0] + c0 * PIXEL} {ORIGIN[1] - r0 * PIXEL}))"))
        scratch.dataProvider().addFeature(feature)
    _, binarized, _ = expected(sample, exclude=water_mask())
    for name, exclude in (("raster", raster), ("scratch", scratch)):
        results = processing.run("darts:prepareexport", {
            "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], **OPTIONS, "EXCLUDE": exclude,
            "OUTPUT_BINARIZED": str(tmp_path / name / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / name / "e.tif")})
        np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), binarized, err_msg=name)
    assert not [f for f in os.listdir(tmp_path / "scratch") if f.startswith(".")]  # the scratch copy is gone


def test_bad_masks_are_one_clear_line_and_write_nothing(provider, sample, tmp_path):
    shifted = str(tmp_path / "shifted.tif")
    write_tif(shifted, water_mask(), origin=(ORIGIN[0] + PIXEL, ORIGIN[1]))
    lines = tmp_path / "roads.gpkg"
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(lines))
    layer = dataset.CreateLayer("roads", None, ogr.wkbLineString)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("LINESTRING (600000 7799000, 601000 7799000)"))
    layer.CreateFeature(feature)
    dataset = None
    for exclude, message in ((shifted, "not on the probabilities' grid: extent differs"),
                             (str(lines), "must be polygons")):
        with pytest.raises(QgsProcessingException, match=message):
            processing.run("darts:prepareexport", {
                "PROBABILITIES": sample["probabilities"], **OPTIONS, "EXCLUDE": exclude,
                "OUTPUT_BINARIZED": str(tmp_path / "out" / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "out" / "e.tif")})
    on_grid = str(tmp_path / "water.tif")
    write_tif(on_grid, water_mask())
    before = open(on_grid, "rb").read()
    with pytest.raises(QgsProcessingException, match="is also an input"):  # the mask is never overwritten
        processing.run("darts:prepareexport", {
            "PROBABILITIES": sample["probabilities"], **OPTIONS, "EXCLUDE": on_grid,
            "OUTPUT_BINARIZED": str(tmp_path / "out" / "b.tif"), "OUTPUT_EXTENT": on_grid})
    assert open(on_grid, "rb").read() == before
    assert not os.path.exists(tmp_path / "out") or not os.listdir(tmp_path / "out")


@pytest.mark.parametrize("kind,boundary", [("polygons", "remove"), ("raster", "clip")])
def test_exclusion_block_by_block_gives_the_same_files(provider, tmp_path, kind, boundary):
    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=1300, seed=4)
    if kind == "polygons":
        exclude = write_water(tmp_path / "water.gpkg", crs="EPSG:3413", scale=6)
    else:
        exclude = str(tmp_path / "water.tif")
        write_tif(exclude, water_mask((1300, 1300), scale=6))
    files = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1})):
        results = processing.run("darts:prepareexport", {
            "PROBABILITIES": probabilities, "QUALITY_MASK": quality, **OPTIONS, "EXCLUDE": exclude, "BOUNDARY": boundary,
            **extra, "OUTPUT_BINARIZED": str(tmp_path / mode / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / mode / "e.tif"),
            "OUTPUT_REPORT": str(tmp_path / mode / "r.html")})
        page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
        files[mode] = read(results["OUTPUT_BINARIZED"]), number(page, "removed_excluded"), number(page, "objects")
        assert not [f for f in os.listdir(tmp_path / mode) if f.startswith(".")]
    np.testing.assert_array_equal(files["blocks"][0], files["memory"][0])
    assert files["blocks"][1:] == files["memory"][1:]
    water = water_mask((1300, 1300), scale=6) != 0
    above = read_percent(probabilities) > 0.5
    assert (above & water).sum() > 1000 and not (files["memory"][0] & water).any()
    assert files["memory"][1] > 0 or boundary == "clip"


# -- several thresholds ------------------------------------------------------------------------

def test_thresholds_through_qgis_process(profile, sample, tmp_path):
    water = write_water(tmp_path / "water.gpkg")
    out = tmp_path / "out"
    run = qgis_process(profile, "run", "darts:prepareexport", "--json", "--",
                       f"PROBABILITIES={sample['probabilities']}", f"QUALITY_MASK={sample['quality']}",
                       "MASK_EROSION_SIZE=3", "MIN_OBJECT_SIZE=20", "THRESHOLDS=0.5, 0.3,0.4",
                       f"EXCLUDE={water}|layername=water|subset=\"kind\" = 'water'",
                       f"OUTPUT_BINARIZED={out / 'binarized.tif'}", f"OUTPUT_EXTENT={out / 'extent.tif'}",
                       f"OUTPUT_POLYGONS={out / 'objects.gpkg'}", f"OUTPUT_REPORT={out / 'report.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout)["results"]
    names = ["0.50", "0.30", "0.40"]
    assert results["OUTPUT_THRESHOLD_BINARIZED"] == [str(out / f"binarized-t{n}.tif") for n in names]
    assert results["OUTPUT_THRESHOLD_POLYGONS"] == [str(out / f"objects-t{n}.gpkg") for n in names]
    assert not (out / "binarized.tif").exists() and not (out / "objects.gpkg").exists()
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    kept = {}
    for name in names:
        extent, binarized, counts = expected(sample, threshold=float(name), exclude=water_mask())
        path = out / f"binarized-t{name}.tif"
        np.testing.assert_array_equal(read(path), binarized, err_msg=name)
        assert dataset_tags(path)["DARTS_binarizethreshold"] == name  # its own, DARTS' key
        layer_name, rows = features(out / f"objects-t{name}.gpkg")
        labels, _ = reference.object_table(binarized)
        assert len({attributes["Region_ID"] for attributes, _ in rows}) == labels.max() > 0
        with open_read_only(out / f"objects-t{name}.gpkg", "vector") as vector:
            assert vector.GetLayer(0).GetMetadataItem("DARTS_binarizethreshold") == name
            assert vector.GetMetadataItem("DARTS_binarizethreshold") == name
        for key, value in counts.items():
            assert number(page, f"{key}-t{name}") == value, (key, name)
        assert number(page, f"kept_objects-t{name}") == labels.max()
        assert number(page, f"kept_area_m2-t{name}") == pytest.approx(binarized.sum() * 100.0)
        kept[name] = labels.max()
    np.testing.assert_array_equal(read(out / "extent.tif"), extent)
    assert len(set(kept.values())) > 1  # the thresholds really differ
    assert page.count("<rect") == 6 and 'id="threshold-plot"' in page and "thresholds</th><td>0.50, 0.30, 0.40" in page


def test_thresholds_are_checked_before_computing(provider, sample, tmp_path):
    base = {"PROBABILITIES": sample["probabilities"], **OPTIONS, "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
            "OUTPUT_EXTENT": str(tmp_path / "e.tif")}
    for thresholds, message in (("0.4,abc", "'abc' is no threshold"), ("0.4,1.2", "'1.2' is no threshold"),
                                ("0.5 0.50", "'0.50' is given twice")):
        with pytest.raises(QgsProcessingException, match=message):
            processing.run("darts:prepareexport", {**base, "THRESHOLDS": thresholds})
    with pytest.raises(QgsProcessingException, match=r"OUTPUT_EXTENT and OUTPUT_BINARIZED \(threshold 0.50\) are the same"):
        processing.run("darts:prepareexport", {**base, "THRESHOLDS": "0.4,0.5", "OUTPUT_EXTENT": str(tmp_path / "b-t0.50.tif")})
    with pytest.raises(QgsProcessingException, match="not a layer of an existing GeoPackage"):
        processing.run("darts:prepareexport", {**base, "THRESHOLDS": "0.4,0.5",
                                               "OUTPUT_POLYGONS": f"ogr:dbname='{tmp_path / 'x.gpkg'}' table=\"objects\""})
    assert os.listdir(tmp_path) == ["input"]


def test_thresholds_with_subsets_block_by_block(provider, tmp_path):
    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=1300, seed=4)
    member, _ = write_sample_tile(str(tmp_path / "member"), size=1300, seed=5)
    files = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1})):
        results = processing.run("darts:prepareexport", {
            "PROBABILITIES": probabilities, "QUALITY_MASK": quality, "SUBSET_PROBABILITIES": [member], **OPTIONS,
            "THRESHOLDS": "0.3,0.7", **extra, "OUTPUT_BINARIZED": str(tmp_path / mode / "b.tif"),
            "OUTPUT_EXTENT": str(tmp_path / mode / "e.tif"), "OUTPUT_POLYGONS": str(tmp_path / mode / "p.gpkg")})
        assert [os.path.basename(p) for p in results["OUTPUT_SUBSET_BINARIZED"]] == [
            "b-t0.30-probabilities.tif", "b-t0.70-probabilities.tif"]
        files[mode] = {os.path.basename(p): read(p) for p in
                       results["OUTPUT_THRESHOLD_BINARIZED"] + results["OUTPUT_SUBSET_BINARIZED"]}
        files[mode]["polygons"] = [len(features(p)[1]) for p in results["OUTPUT_THRESHOLD_POLYGONS"]]
    assert sorted(files["memory"]) == sorted(files["blocks"])
    for name, pixels in files["memory"].items():
        np.testing.assert_array_equal(files["blocks"][name], pixels, err_msg=name)
    assert not np.array_equal(files["memory"]["b-t0.30.tif"], files["memory"]["b-t0.70.tif"])


def test_polygons_without_a_crs_are_used_in_the_rasters_crs_with_a_warning(provider, sample, tmp_path):
    with_crs = write_water(tmp_path / "utm.gpkg", crs=f"EPSG:{EPSG}")
    with open_read_only(with_crs, "vector") as source:
        dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "nocrs.gpkg"))
        layer = dataset.CreateLayer("water", None, ogr.wkbPolygon)
        for feature in source.GetLayer(0):
            if feature.GetField("kind") == "water":
                copy = ogr.Feature(layer.GetLayerDefn())
                copy.SetGeometry(feature.GetGeometryRef())
                layer.CreateFeature(copy)
        dataset = None
    warnings = []

    class Feedback(QgsProcessingFeedback):
        def pushWarning(self, text):  # noqa: N802
            warnings.append(text)

    out = tmp_path / "out"
    processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "MASK_EROSION_SIZE": 3,
        "MIN_OBJECT_SIZE": 20, "EXCLUDE": str(tmp_path / "nocrs.gpkg"),
        "OUTPUT_BINARIZED": str(out / "b.tif"), "OUTPUT_EXTENT": str(out / "e.tif")}, feedback=Feedback())
    assert any("EXCLUDE: the polygons have no CRS" in text for text in warnings), warnings
    _, binarized, _ = expected(sample, exclude=water_mask())
    np.testing.assert_array_equal(read(out / "b.tif"), binarized)
