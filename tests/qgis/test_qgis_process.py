"""The packaged plugin in a throw-away QGIS profile, driven by qgis_process as a subprocess,
and the shipped graphical model, headless and through qgis_process."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from qgis import processing
from qgis_cli import qgis_process
from rasters import expected_on_sample, read
from vectors import features

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "resources" / "models" / "darts_postprocessing.model3"


def test_plugin_is_listed_and_documented(profile):
    listing = qgis_process(profile, "plugins")
    assert "* darts_postprocessing" in listing.stdout, listing.stdout
    algorithms = qgis_process(profile, "list")
    for name in ("darts:prepareexport", "darts:erodemask", "darts:binarize", "darts:polygonize", "darts:exporttile",
                 "darts:qualitymask"):
        assert name in algorithms.stdout
    helped = qgis_process(profile, "help", "darts:prepareexport")
    assert helped.returncode == 0
    for parameter in ("PROBABILITIES", "QUALITY_MASK", "THRESHOLD", "MASK_EROSION_SIZE", "EDGE_EROSION_SIZE",
                      "MIN_OBJECT_SIZE", "QUALITY_LEVEL", "BOUNDARY", "SIZE_CONNECTIVITY", "DEVICE",
                      "SUBSET_PROBABILITIES", "OUTPUT_BINARIZED", "OUTPUT_EXTENT", "OUTPUT_PROBABILITIES",
                      "OUTPUT_POLYGONS", "OUTPUT_REPORT"):
        assert parameter in helped.stdout, parameter


def test_run_prepareexport(profile, sample, tmp_path):
    out = tmp_path / "out"
    result = qgis_process(profile, "run", "darts:prepareexport", "--json", "--",
                          f"PROBABILITIES={sample['probabilities']}", f"QUALITY_MASK={sample['quality']}",
                          "THRESHOLD=0.45", "MASK_EROSION_SIZE=4", "MIN_OBJECT_SIZE=12", "QUALITY_LEVEL=high_quality",
                          "BOUNDARY=clip", "SIZE_CONNECTIVITY=4",
                          f"OUTPUT_BINARIZED={out / 'binarized.tif'}", f"OUTPUT_EXTENT={out / 'extent.tif'}")
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout)["results"]
    expected = expected_on_sample(sample, bin_threshold=0.45, mask_erosion_size=4, min_object_size=12, quality_level=2,
                            boundary="clip", size_connectivity=4)
    assert expected["binarized_segmentation"].any()
    np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), expected["binarized_segmentation"])
    np.testing.assert_array_equal(read(results["OUTPUT_EXTENT"]), expected["extent"])


def test_polygons_tile_and_quality_mask_through_qgis_process(profile, sample, tmp_path):
    quality = qgis_process(profile, "run", "darts:qualitymask", "--json", "--", f"INPUT={sample['quality']}",
                           "SOURCE=observations", f"OUTPUT={tmp_path / 'quality.tif'}")
    assert quality.returncode == 0, quality.stdout + quality.stderr
    np.testing.assert_array_equal(read(tmp_path / "quality.tif"), np.where(read(sample["quality"]) > 0, 1, 0))
    prepared = qgis_process(profile, "run", "darts:prepareexport", "--json", "--",
                            f"PROBABILITIES={sample['probabilities']}", f"QUALITY_MASK={sample['quality']}",
                            "MASK_EROSION_SIZE=3", "MIN_OBJECT_SIZE=20", f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}",
                            f"OUTPUT_EXTENT={tmp_path / 'e.tif'}", f"OUTPUT_POLYGONS={tmp_path / 'objects.gpkg'}",
                            f"OUTPUT_REPORT={tmp_path / 'report.html'}")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert (tmp_path / "report.html").stat().st_size > 1000
    polygons = qgis_process(profile, "run", "darts:polygonize", "--json", "--", f"BINARIZED={tmp_path / 'b.tif'}",
                            f"PROBABILITIES={sample['probabilities']}", f"OUTPUT={tmp_path / 'again.gpkg'}")
    assert polygons.returncode == 0, polygons.stdout + polygons.stderr
    tile = qgis_process(profile, "run", "darts:exporttile", "--json", "--", f"PROBABILITIES={sample['probabilities']}",
                        f"BINARIZED={tmp_path / 'b.tif'}", f"EXTENT={tmp_path / 'e.tif'}",
                        f"OUTPUT_FOLDER={tmp_path / 'tile'}")
    assert tile.returncode == 0, tile.stdout + tile.stderr
    results = json.loads(tile.stdout)["results"]
    assert results["OUTPUT_SEGMENTS"].endswith("prediction_segments.gpkg")
    assert sorted(os.listdir(tmp_path / "tile")) == sorted(["probabilities.tif", "binarized.tif", "extent.tif",
                                                             "quicklook.png", "prediction_segments.gpkg",
                                                             "prediction_extent.gpkg", "thumbnail.jpg",
                                                             "darts_inference.json"])
    counts = [polygon_count(p) for p in (tmp_path / "objects.gpkg", tmp_path / "again.gpkg",
                                         tmp_path / "tile" / "prediction_segments.gpkg")]
    assert counts[0] > 0 and len(set(counts)) == 1


def test_bad_parameter_fails_cleanly(profile, sample, tmp_path):
    result = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={sample['probabilities']}",
                          "THRESHOLD=1.5", f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}")
    assert result.returncode != 0 and "THRESHOLD" in result.stdout + result.stderr
    assert not (tmp_path / "b.tif").exists()


def polygon_count(path):
    return len(features(path)[1])


def label_count(binary):
    from darts_postprocessing.core import label_objects

    return label_objects(binary)[1]


def model_expectation(sample):
    return expected_on_sample(sample, bin_threshold=0.5, mask_erosion_size=3, min_object_size=10, quality_level=1)


def test_model_runs_through_qgis_process(profile, sample, tmp_path):
    result = qgis_process(profile, "run", str(MODEL), "--json", "--", f"probabilities={sample['probabilities']}",
                          f"quality_mask={sample['quality']}", "threshold=0.5", "erosion_size=3", "min_object_size=10",
                          f"binarized_segmentation={tmp_path / 'b.tif'}", f"extent={tmp_path / 'e.tif'}",
                          f"object_polygons={tmp_path / 'p.gpkg'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert polygon_count(tmp_path / "p.gpkg") == label_count(read(tmp_path / "b.tif")) > 0
    expected = model_expectation(sample)
    np.testing.assert_array_equal(read(tmp_path / "b.tif"), expected["binarized_segmentation"])
    np.testing.assert_array_equal(read(tmp_path / "e.tif"), expected["extent"])


def load_model():
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    return model


def model_parameters(sample, out):
    return {"probabilities": sample["probabilities"], "quality_mask": sample["quality"], "threshold": 0.5,
            "erosion_size": 3, "min_object_size": 10, "binarized_segmentation": str(out / "b.tif"),
            "extent": str(out / "e.tif"), "object_polygons": str(out / "p.gpkg")}


def test_model_runs_headless(provider, sample, tmp_path):
    """The model's files are those its steps write (pixels, polygons, layer name, tags naming
    the outputs), written together by its last step: nothing else appears beside them."""
    from darts_postprocessing.core.files.tags import read_tags

    model = load_model()
    assert {c.algorithmId() for c in model.childAlgorithms().values()} == {"darts:erodemask", "darts:binarize",
                                                                          "darts:polygonize", "darts:collectoutputs"}
    out = tmp_path / "out"
    results = processing.run(model, model_parameters(sample, out))
    assert sorted(os.listdir(out)) == ["b.tif", "e.tif", "p.gpkg"]
    assert polygon_count(results["object_polygons"]) == label_count(read(results["binarized_segmentation"])) > 0
    expected = model_expectation(sample)
    np.testing.assert_array_equal(read(results["binarized_segmentation"]), expected["binarized_segmentation"])
    np.testing.assert_array_equal(read(results["extent"]), expected["extent"])
    direct = processing.run("darts:polygonize", {"BINARIZED": str(out / "b.tif"), "PROBABILITIES": sample["probabilities"],
                                                 "OUTPUT": str(tmp_path / "direct.gpkg")})
    name, polygons = features(out / "p.gpkg")
    assert name == "p"
    assert [(items, geometry.ExportToWkt()) for items, geometry in polygons] == [
        (items, geometry.ExportToWkt()) for items, geometry in features(direct["OUTPUT"])[1]]
    assert read_tags(str(out / "b.tif"))["DARTS_binarize_mask"] == "e.tif"
    assert read_tags(str(out / "p.gpkg"))["DARTS_polygonize_binarized"] == "b.tif"
    assert read_tags(str(out / "p.gpkg"))["DARTS_binarize_mask"] == "e.tif"


@pytest.mark.parametrize("at", [60, 85], ids=["while polygonizing", "while writing the outputs"])
def test_canceling_the_model_leaves_nothing(provider, sample, tmp_path, at):
    """Cancel in a later step (the model's steps take a quarter of the progress each) or in
    the last one, after it has copied a file: no output, nothing hidden."""
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= at and feedback.cancel())
    with pytest.raises(QgsProcessingException, match="Canceled"):
        processing.run(load_model(), model_parameters(sample, tmp_path / "out"), feedback=feedback)
    assert [name for _, _, names in os.walk(tmp_path / "out") for name in names] == []


def test_collectoutputs_copies_and_never_changes_its_inputs(provider, profile, sample, tmp_path):
    """The model's last step on its own: hidden from the toolbox, usable by qgis_process; its
    inputs stay byte for byte, an output onto an input or a raster that is no GeoTIFF is refused."""
    import hashlib

    from osgeo import gdal
    from qgis.core import Qgis

    assert provider.algorithm("collectoutputs").flags() & Qgis.ProcessingAlgorithmFlag.HideFromToolbox
    assert "darts:collectoutputs" not in qgis_process(profile, "list").stdout
    steps = processing.run(load_model(), model_parameters(sample, tmp_path / "in"))
    inputs = [f"BINARIZED={steps['binarized_segmentation']}", f"EXTENT={steps['extent']}",
              f"POLYGONS={steps['object_polygons']}"]

    def digests():
        return {name: hashlib.sha256((tmp_path / "in" / name).read_bytes()).hexdigest()
                for name in os.listdir(tmp_path / "in")}

    before = digests()
    out = tmp_path / "out"
    result = qgis_process(profile, "run", "darts:collectoutputs", "--", *inputs, f"OUTPUT_BINARIZED={out / 'b2.tif'}",
                          f"OUTPUT_EXTENT={out / 'e2.tif'}", f"OUTPUT_POLYGONS={out / 'polygons.gpkg'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert digests() == before
    np.testing.assert_array_equal(read(out / "b2.tif"), read(steps["binarized_segmentation"]))
    assert features(out / "polygons.gpkg")[0] == "polygons" and polygon_count(out / "polygons.gpkg") > 0
    onto_input = qgis_process(profile, "run", "darts:collectoutputs", "--", *inputs, f"OUTPUT_BINARIZED={out / 'b3.tif'}",
                              f"OUTPUT_EXTENT={out / 'e3.tif'}", f"OUTPUT_POLYGONS={steps['object_polygons']}")
    assert onto_input.returncode != 0 and "inputs are never overwritten" in onto_input.stderr, onto_input.stderr
    gdal.Translate(str(tmp_path / "b.vrt"), steps["binarized_segmentation"], format="VRT")
    not_tiff = qgis_process(profile, "run", "darts:collectoutputs", "--", f"BINARIZED={tmp_path / 'b.vrt'}", *inputs[1:],
                            f"OUTPUT_BINARIZED={out / 'b3.tif'}", f"OUTPUT_EXTENT={out / 'e3.tif'}",
                            f"OUTPUT_POLYGONS={out / 'p3.gpkg'}")
    assert not_tiff.returncode != 0 and "b.vrt is not a GeoTIFF" in not_tiff.stderr, not_tiff.stderr
    assert sorted(os.listdir(out)) == ["b2.tif", "e2.tif", "polygons.gpkg"]
    assert digests() == before
