"""darts:evaluate through processing.run and qgis_process on real files: the table, layers and
report against the core run on the same arrays, clear errors, empty reference, cancel."""

import csv
import json
import os

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from qgis import processing
from qgis.core import QgsProcessingException, QgsProcessingFeedback
from qgis_cli import qgis_process
from darts_folders import darts_region
from reading import open_read_only
from sample_tile import EPSG, ORIGIN, PIXEL

gdal.UseExceptions()
ogr.UseExceptions()
SWEEP = dict(THRESHOLDS="0.3,0.5,0.7", MIN_OBJECT_SIZES="0,20", MASK_EROSION_SIZE=3, QUALITY_LEVEL="low_quality")


def utm():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def sample_tile(sample, threshold=0.5):
    """The objects prepare_export keeps on the sample (the run's settings, minimum size 20)."""
    from darts_postprocessing.core import prepare_export
    from rasters import read

    probabilities = read(sample["probabilities"])
    tile = {"probabilities": np.where(probabilities == 255, np.nan, probabilities / np.float32(100)).astype(np.float32),
            "quality_data_mask": read(sample["quality"])}
    return prepare_export(tile, threshold, 3, 20, 1, probability_scale="percent")["binarized_segmentation"]


def write_reference(path, sample, crs="EPSG:4326", drop_every=3, extra=True, with_crs=True, shift_rows=0):
    """Reference slumps: the polygons of the objects prepare_export keeps at 0.5 (every
    `drop_every`th left out: those become false positives), plus one rectangle where there is
    no object (missed), stored in `crs` (with_crs False: no CRS at all)."""
    from darts_postprocessing.core import polygonize

    binary = sample_tile(sample)
    folder = os.path.dirname(str(path))
    objects_path = os.path.join(folder, "objects.gpkg")
    geotransform = (ORIGIN[0], PIXEL, 0.0, ORIGIN[1] - shift_rows * PIXEL, 0.0, -PIXEL)
    polygonize(binary, geotransform, f"EPSG:{EPSG}", objects_path)
    with open_read_only(objects_path, "vector") as objects:
        objects_wkb = [bytes(feature.GetGeometryRef().ExportToWkb()) for feature in objects.GetLayer(0)]
    target_srs = osr.SpatialReference()
    target_srs.SetFromUserInput(crs)
    target_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(utm(), target_srs)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("slumps", target_srs if with_crs else None, ogr.wkbMultiPolygon)
    geometries = [ogr.CreateGeometryFromWkb(wkb) for index, wkb in enumerate(objects_wkb)
                  if drop_every is None or index % drop_every != drop_every - 1]
    if extra:
        x0, y0 = ORIGIN[0] + 100 * PIXEL, ORIGIN[1] - (100 + shift_rows) * PIXEL
        geometries.append(ogr.CreateGeometryFromWkt(
            f"MULTIPOLYGON ((({x0} {y0}, {x0 + 80} {y0}, {x0 + 80} {y0 - 80}, {x0} {y0 - 80}, {x0} {y0})))"))
    for geometry in geometries:
        geometry.Segmentize(2.0)
        geometry.Transform(transform)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    count = layer.GetFeatureCount()
    dataset = None
    return str(path), count


@pytest.fixture()
def evaluated(provider, sample, tmp_path):
    reference_path, count = write_reference(tmp_path / "reference.gpkg", sample)
    out = tmp_path / "out"
    results = processing.run("darts:evaluate", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "REFERENCE": reference_path,
        **SWEEP, "OUTPUT_TABLE": str(out / "scores.csv"), "OUTPUT_FALSE_POSITIVES": str(out / "false_positives.gpkg"),
        "OUTPUT_MISSED": str(out / "missed.gpkg"), "OUTPUT_REPORT": str(out / "report.html")})
    return results, reference_path, count


def read_rows(path):
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_equals_the_core_on_the_same_arrays(evaluated, sample):
    from darts_postprocessing.core.regions.evaluate import evaluate, reference_raster
    from rasters import read

    results, reference_path, count = evaluated
    probabilities = read(sample["probabilities"])
    tile = {"probabilities": np.where(probabilities == 255, np.nan, probabilities / np.float32(100)).astype(np.float32),
            "quality_data_mask": read(sample["quality"])}
    shape = probabilities.shape
    ids, _ = reference_raster(reference_path, shape, (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL), f"EPSG:{EPSG}")
    assert len(np.unique(ids)) - 1 == count
    expected = evaluate(tile, ids, [0.3, 0.5, 0.7], [0, 20], reference_count=count, mask_erosion_size=3,
                        quality_level=1, probability_scale="percent")  # DARTS' uint8 percent: v >= 100 t passes
    rows = read_rows(results["OUTPUT_TABLE"])
    assert len(rows) == 6
    for row, setting in zip(rows, expected.settings):
        assert (float(row["threshold"]), int(row["min_object_size"])) == (setting.threshold, setting.min_object_size)
        for name in ("object_tp", "object_fp", "object_fn", "pixel_tp", "pixel_fp", "pixel_fn", "pixel_tn", "found"):
            assert int(row[name]) == setting.scores[name], name
        assert float(row["object_f1"]) == pytest.approx(setting.scores["object_f1"], rel=1e-5)
    assert [row["best"] for row in rows].count("1") == 1
    best = expected.best
    assert rows[expected.settings.index(best)]["best"] == "1"
    assert (results["BEST_THRESHOLD"], results["BEST_MIN_OBJECT_SIZE"]) == (best.threshold, best.min_object_size)
    assert best.scores["object_tp"] > 0 and best.scores["object_fp"] > 0 and best.scores["object_fn"] > 0
    with open_read_only(results["OUTPUT_FALSE_POSITIVES"], "vector") as false_positives_file:
        assert false_positives_file.GetLayer(0).GetFeatureCount() == best.scores["object_fp"]
    with open_read_only(results["OUTPUT_MISSED"], "vector") as missed_file:
        missed = missed_file.GetLayer(0)
        assert missed.GetFeatureCount() == best.scores["object_fn"]
        assert missed.GetSpatialRef().GetAuthorityCode(None) == str(EPSG)
        fids = sorted(feature.GetField("reference_fid") for feature in missed)
    assert fids == sorted(int(i) for i in expected.missed())  # GeoPackage FIDs 1..n are the burnt ids here
    assert count in fids  # the rectangle where no object lies


def test_report_has_the_best_setting_and_plots(evaluated):
    results, _, _ = evaluated
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    assert f'<td id="best_threshold">{results["BEST_THRESHOLD"]:g}</td>' in page
    assert '<svg id="scores-plot"' in page and '<svg id="pr-curve"' in page and page.count("<polyline") >= 4
    assert page.count("<tr") >= 6 + 1 and 'class=best' in page and "nan" not in page.lower()


def test_errors_are_one_line_and_write_nothing(provider, sample, tmp_path):
    out = tmp_path / "out"
    outputs = {"OUTPUT_TABLE": str(out / "s.csv"), "OUTPUT_FALSE_POSITIVES": str(out / "fp.gpkg"),
               "OUTPUT_MISSED": str(out / "m.gpkg"), "OUTPUT_REPORT": str(out / "r.html")}
    no_crs, _ = write_reference(tmp_path / "no_crs.gpkg", sample, crs=f"EPSG:{EPSG}", with_crs=False)
    far, _ = write_reference(tmp_path / "far.gpkg", sample, crs=f"EPSG:{EPSG}", shift_rows=5000)
    base = {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], **outputs}
    for parameters, message in (({"REFERENCE": no_crs}, "REFERENCE: the reference polygons have no CRS"),
                                ({"REFERENCE": far}, "none of the .* reference slumps lies on the probabilities"),
                                ({"REFERENCE": far, "EXTENT": sample["quality"]}, "QUALITY_MASK and EXTENT are both")):
        with pytest.raises(QgsProcessingException, match=message):
            processing.run("darts:evaluate", {**base, **parameters})
        assert not out.exists() or not os.listdir(out)


def test_empty_reference_gives_defined_scores(provider, sample, tmp_path):
    reference_path, count = write_reference(tmp_path / "empty.gpkg", sample, drop_every=1, extra=False)
    assert count == 0
    feedback = Warnings()
    results = processing.run("darts:evaluate", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "REFERENCE": reference_path,
        "MASK_EROSION_SIZE": 3, "OUTPUT_TABLE": str(tmp_path / "s.csv")}, feedback=feedback)
    (row,) = read_rows(results["OUTPUT_TABLE"])
    assert (row["object_precision"], row["object_recall"], row["object_f1"]) == ("0", "1", "0")
    assert int(row["object_fp"]) > 0 and row["reference_slumps"] == "0"
    assert any("has no slumps" in warning for warning in feedback.warnings)


class Warnings(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.warnings = []

    def pushWarning(self, text):  # noqa: N802
        self.warnings.append(text)
        super().pushWarning(text)


def test_cancel_leaves_no_output(provider, sample, tmp_path):
    reference_path, _ = write_reference(tmp_path / "reference.gpkg", sample)
    out = tmp_path / "out"
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= 30 and feedback.cancel())
    with pytest.raises(QgsProcessingException, match="Canceled: no output was written"):
        processing.run("darts:evaluate", {
            "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "REFERENCE": reference_path,
            **SWEEP, "OUTPUT_TABLE": str(out / "s.csv"), "OUTPUT_REPORT": str(out / "r.html")}, feedback=feedback)
    assert feedback.isCanceled() and (not out.exists() or not os.listdir(out))


def test_qgis_process_runs_evaluate(profile, sample, tmp_path):
    reference_path, _ = write_reference(tmp_path / "reference.gpkg", sample)
    run = qgis_process(profile, "run", "darts:evaluate", "--json", "--", f"PROBABILITIES={sample['probabilities']}",
                       f"QUALITY_MASK={sample['quality']}", f"REFERENCE={reference_path}",
                       *(f"{key}={value}" for key, value in SWEEP.items()), f"OUTPUT_TABLE={tmp_path / 'scores.csv'}",
                       f"OUTPUT_FALSE_POSITIVES={tmp_path / 'fp.gpkg'}", f"OUTPUT_MISSED={tmp_path / 'missed.gpkg'}",
                       f"OUTPUT_REPORT={tmp_path / 'report.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert len(read_rows(results["OUTPUT_TABLE"])) == 6
    assert "Best setting by object_f1" in results["BEST_SUMMARY"]
    assert os.path.isfile(results["OUTPUT_REPORT"]) and os.path.isfile(results["OUTPUT_MISSED"])


def test_a_darts_tile_against_slumps_digitized_on_the_ground(provider, tmp_path):
    """DARTS' exported probabilities.tif of one tile (UTM 7N; tests/darts_folders.py) against
    round slumps digitized in EPSG:3413 for the whole region: the slumps off the tile are not
    counted, those on it are found pixel for pixel (the test region draws slumps as discs burnt at
    pixel centres, as the reference is) at every threshold, and the first of equals is best."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from darts_folders import darts_run

    run = darts_run(tmp_path / "run", years=(2024,))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3413)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "digitized.gpkg"))
    layer = dataset.CreateLayer("slumps", srs, ogr.wkbPolygon)
    for x, y, radius in run["slumps"][2024].values():
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})").Buffer(radius, 16))
        layer.CreateFeature(feature)
    dataset = None
    tile = run["folders"][(2024, "tile_A")]
    results = processing.run("darts:evaluate", {
        "PROBABILITIES": os.path.join(tile, "probabilities.tif"), "REFERENCE": str(tmp_path / "digitized.gpkg"),
        "MASK_EROSION_SIZE": 0, "EDGE_EROSION_SIZE": 0, "BOUNDARY": "clip", "THRESHOLDS": "0.2,0.5,0.8",
        "MIN_OBJECT_SIZES": "0,32", "OUTPUT_TABLE": str(tmp_path / "scores.csv")})
    rows = read_rows(results["OUTPUT_TABLE"])
    assert [row["best"] for row in rows] == ["1", "0", "0", "0", "0", "0"]
    for row in rows:
        assert 0 < int(row["reference_slumps"]) < len(run["slumps"][2024])
        assert (row["object_f1"], row["pixel_iou"], row["object_fp"], row["object_fn"]) == ("1", "1", "0", "0")


# -- several tiles ---------------------------------------------------------------------------------

def test_evaluate_a_folder_of_darts_tiles(provider, tmp_path):
    """INPUT_FOLDER: the tiles of a DARTS run, each slump counted once; the same numbers as the
    core's evaluate_tiles; TILES (the probabilities files) gives the same table; the missed slump
    comes in the reference's CRS."""
    from darts_postprocessing.core.regions.evaluate import evaluate_tiles
    from darts_postprocessing.core.regions.tiles import TileSettings

    run, reference, drawn = darts_region(tmp_path)
    parameters = {"REFERENCE": reference, "BOUNDARY": "clip", "THRESHOLDS": "0.3,0.5", "MIN_OBJECT_SIZES": "0,32",
                  "OUTPUT_FALSE_POSITIVES": str(tmp_path / "fp.gpkg"), "OUTPUT_MISSED": str(tmp_path / "missed.gpkg"),
                  "OUTPUT_REPORT": str(tmp_path / "report.html")}
    results = processing.run("darts:evaluate", {"INPUT_FOLDER": str(tmp_path / "run"), **parameters,
                                                "OUTPUT_TABLE": str(tmp_path / "scores.csv")})
    rows = read_rows(results["OUTPUT_TABLE"])
    expected = evaluate_tiles(str(tmp_path / "run"), (reference, None, None), [0.3, 0.5], [0, 32],
                              settings=TileSettings(boundary="clip"))
    assert len(rows) == 4
    for row, setting in zip(rows, expected.settings):
        for name in ("object_tp", "object_fp", "object_fn", "pixel_tp", "pixel_fp", "pixel_fn", "pixel_tn",
                     "reference_slumps"):
            assert int(row[name]) == setting.scores[name], name
        assert (row["reference_slumps"], row["object_tp"], row["object_fp"], row["object_fn"]) == \
            (str(drawn + 1), str(drawn), "0", "1")
    with open_read_only(results["OUTPUT_MISSED"], "vector") as missed_file:
        missed = missed_file.GetLayer(0)
        assert missed.GetFeatureCount() == 1
        assert missed.GetSpatialRef().GetAuthorityCode(None) == "3413"
        assert next(iter(missed)).GetField("reference_fid") == drawn + 1
    with open_read_only(results["OUTPUT_FALSE_POSITIVES"], "vector") as false_positives:
        assert false_positives.GetLayer(0).GetFeatureCount() == 0
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    assert "first tile (in tile id order)" in page and "nan" not in page.lower()
    files = [os.path.join(folder, "probabilities.tif") for folder in run["folders"].values()]
    listed = processing.run("darts:evaluate", {"TILES": files, **parameters,
                                               "OUTPUT_FALSE_POSITIVES": str(tmp_path / "fp2.gpkg"),
                                               "OUTPUT_MISSED": str(tmp_path / "missed2.gpkg"),
                                               "OUTPUT_REPORT": str(tmp_path / "report2.html"),
                                               "OUTPUT_TABLE": str(tmp_path / "scores2.csv")})
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in read_rows(listed["OUTPUT_TABLE"])] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_tile_errors_are_one_line(provider, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "empty" / "_metadata").mkdir(parents=True)
    run, reference, _ = darts_region(tmp_path)
    far = str(tmp_path / "far.gpkg")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3413)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(far)
    layer = dataset.CreateLayer("slumps", srs, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POINT (0 0)").Buffer(50, 8))
    layer.CreateFeature(feature)
    dataset = None
    tile = next(iter(run["folders"].values()))
    for parameters, message in (
            ({"INPUT_FOLDER": str(tmp_path / "empty"), "REFERENCE": reference}, "no tile found in .*: a tile is a folder"),
            ({"INPUT_FOLDER": str(tmp_path / "run"), "REFERENCE": far},
             "none of the 1 reference slumps lies on any of the 3 tiles"),
            ({"INPUT_FOLDER": str(tmp_path / "run"), "REFERENCE": reference,
              "PROBABILITIES": os.path.join(tile, "probabilities.tif")}, "PROBABILITIES and INPUT_FOLDER are both"),
            ({"INPUT_FOLDER": str(tmp_path / "run"), "REFERENCE": reference,
              "EXTENT": os.path.join(tile, "probabilities.tif")}, "EXTENT is given with tiles"),
            ({"REFERENCE": reference}, "PROBABILITIES: no raster given")):
        with pytest.raises(QgsProcessingException, match=message) as raised:
            processing.run("darts:evaluate", {**parameters, "OUTPUT_TABLE": str(out / "s.csv")})
        assert "\n" not in str(raised.value)
        assert not out.exists() or not os.listdir(out)


def test_qgis_process_evaluates_a_darts_folder(profile, tmp_path):
    _, reference, drawn = darts_region(tmp_path)
    run = qgis_process(profile, "run", "darts:evaluate", "--json", "--", f"INPUT_FOLDER={tmp_path / 'run'}",
                       f"REFERENCE={reference}", "BOUNDARY=clip", "THRESHOLDS=0.3,0.5,0.7", "MIN_OBJECT_SIZES=0,32",
                       f"OUTPUT_TABLE={tmp_path / 'scores.csv'}", f"OUTPUT_FALSE_POSITIVES={tmp_path / 'fp.gpkg'}",
                       f"OUTPUT_MISSED={tmp_path / 'missed.gpkg'}", f"OUTPUT_REPORT={tmp_path / 'report.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    rows = read_rows(results["OUTPUT_TABLE"])
    assert len(rows) == 6 and all(row["reference_slumps"] == str(drawn + 1) for row in rows)
    assert results["BEST_THRESHOLD"] == 0.3 and "Best setting by object_f1" in results["BEST_SUMMARY"]
    assert os.path.isfile(results["OUTPUT_REPORT"]) and os.path.isfile(results["OUTPUT_MISSED"])


def test_a_model_evaluates_a_folder_of_tiles(provider, tmp_path):
    """A model (as drawn in the modeler): a folder parameter into darts:evaluate's INPUT_FOLDER,
    its table and best threshold as the model's outputs."""
    from qgis.core import (QgsProcessingContext, QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource, QgsProcessingModelOutput,
                           QgsProcessingModelParameter, QgsProcessingParameterFile)

    _, reference, drawn = darts_region(tmp_path)
    model = QgsProcessingModelAlgorithm("evaluate tiles", "DARTS tests")
    model.addModelParameter(QgsProcessingParameterFile("tiles", "Tiles",
                                                       behavior=QgsProcessingParameterFile.Behavior.Folder),
                            QgsProcessingModelParameter("tiles"))
    child = QgsProcessingModelChildAlgorithm("darts:evaluate")
    child.setChildId("evaluate")
    child.addParameterSources("INPUT_FOLDER", [QgsProcessingModelChildParameterSource.fromModelParameter("tiles")])
    for name, value in (("REFERENCE", reference), ("BOUNDARY", "clip"), ("THRESHOLDS", "0.5,0.7")):
        child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    output = QgsProcessingModelOutput("scores", "Scores")
    output.setChildOutputName("OUTPUT_TABLE")
    child.setModelOutputs({"scores": output})
    model.addChildAlgorithm(child)
    model.updateDestinationParameters()
    results = processing.run(model, {"tiles": str(tmp_path / "run"), "scores": str(tmp_path / "scores.csv")},
                             context=QgsProcessingContext())
    rows = read_rows(results["scores"])
    assert [row["reference_slumps"] for row in rows] == [str(drawn + 1)] * 2
    assert rows[0]["best"] == "1" and rows[0]["object_tp"] == str(drawn)
