"""The algorithms through processing.run in a real, headless QGIS: outputs against the core."""

import os

import numpy as np
import pytest
from darts_postprocessing.core import binarize, erode_mask, prepare_export
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessing, QgsProcessingException, QgsProcessingFeedback
from rasters import expected_on_sample, read, read_percent
from reading import open_read_only
from sample_tile import sample_arrays, write_tif

gdal.UseExceptions()


def test_provider_and_algorithms_are_registered(provider):
    assert provider.name() == "DARTS postprocessing" and not provider.icon().isNull()
    assert provider.supportedOutputRasterLayerExtensions() == ["tif"]
    assert provider.supportedOutputVectorLayerExtensions() == ["gpkg"]
    ids = {a.id() for a in provider.algorithms()}
    assert ids == {"darts:prepareexport", "darts:erodemask", "darts:binarize", "darts:polygonize", "darts:exporttile",
                   "darts:qualitymask", "darts:processtiles", "darts:collectoutputs", "darts:evaluate",
                   "darts:compareyears"}
    for algorithm in provider.algorithms():
        assert algorithm.shortHelpString() and algorithm.displayName()


def test_prepareexport_equals_core(provider, sample, tmp_path):
    out = tmp_path / "out"
    results = processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "THRESHOLD": 0.5,
        "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 20, "QUALITY_LEVEL": "high_quality",
        "OUTPUT_BINARIZED": str(out / "binarized.tif"), "OUTPUT_EXTENT": str(out / "extent.tif"),
        "OUTPUT_PROBABILITIES": str(out / "probabilities.tif")})
    expected = expected_on_sample(sample, bin_threshold=0.5, mask_erosion_size=3, min_object_size=20, quality_level=2)
    binarized = read(results["OUTPUT_BINARIZED"])
    assert binarized.dtype == np.uint8 and binarized.any()
    np.testing.assert_array_equal(binarized, expected["binarized_segmentation"].astype(np.uint8))
    np.testing.assert_array_equal(read(results["OUTPUT_EXTENT"]), expected["extent"])
    np.testing.assert_array_equal(read(results["OUTPUT_PROBABILITIES"]), expected["probabilities"])
    with open_read_only(results["OUTPUT_BINARIZED"]) as dataset, open_read_only(sample["probabilities"]) as source:
        assert dataset.GetGeoTransform() == source.GetGeoTransform()
        assert dataset.GetProjection() == source.GetProjection()
        assert dataset.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
    assert not [f for f in os.listdir(out) if "partial" in f]


def test_defaults_and_float_input_and_subsets(provider, sample, tmp_path):
    from sample_tile import write_sample_tile

    float_path, _ = write_sample_tile(str(tmp_path / "float"), size=200, seed=1, as_float=True)
    member_path, _ = write_sample_tile(str(tmp_path / "member"), size=200, seed=2, as_float=True)
    results = processing.run("darts:prepareexport", {
        "PROBABILITIES": float_path, "QUALITY_MASK": sample["quality"], "SUBSET_PROBABILITIES": [member_path],
        "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": QgsProcessing.TEMPORARY_OUTPUT})
    probabilities, quality = sample_arrays(200, 1)
    member, _ = sample_arrays(200, 2)
    expected = prepare_export({"probabilities": probabilities, "quality_data_mask": quality,
                               "probabilities-member": member}, 0.5, 10, 32, 1, ["member"], "cpu")
    np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), expected["binarized_segmentation"])
    (subset_path,) = results["OUTPUT_SUBSET_BINARIZED"]
    assert subset_path.endswith("b-probabilities.tif")
    np.testing.assert_array_equal(read(subset_path), expected["binarized_segmentation-member"])


def test_erodemask_then_binarize_equals_prepareexport(provider, sample, tmp_path):
    eroded = processing.run("darts:erodemask", {"MASK": sample["quality"], "QUALITY_LEVEL": "low_quality", "SIZE": 4,
                                                "OUTPUT": str(tmp_path / "eroded.tif")})["OUTPUT"]
    binarized = processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "MASK": eroded,
                                                  "THRESHOLD": 0.4, "MIN_OBJECT_SIZE": 10,
                                                  "OUTPUT": str(tmp_path / "binarized.tif")})["OUTPUT"]
    expected = expected_on_sample(sample, bin_threshold=0.4, mask_erosion_size=4, min_object_size=10, quality_level=1)
    np.testing.assert_array_equal(read(eroded), expected["extent"])
    np.testing.assert_array_equal(read(binarized), expected["binarized_segmentation"])


def test_binarize_without_mask_and_with_upstream_connectivity(provider, sample, tmp_path):
    out = processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "THRESHOLD": 0.3,
                                            "MIN_OBJECT_SIZE": 50, "SIZE_CONNECTIVITY": "4",
                                            "OUTPUT": str(tmp_path / "b.tif")})["OUTPUT"]
    floats = read_percent(sample["probabilities"])
    expected = binarize(floats, 0.3, 50, np.ones(floats.shape, np.uint8), "cpu", size_connectivity=4,
                        probability_scale="percent")
    np.testing.assert_array_equal(read(out), expected)


def test_no_quality_mask_means_valid_where_predicted(provider, sample, tmp_path):
    out = processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "MASK_EROSION_SIZE": 2, "QUALITY_LEVEL": "high_quality",
        "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    probabilities = read(sample["probabilities"])
    np.testing.assert_array_equal(read(out["OUTPUT_EXTENT"]), erode_mask(probabilities != 255, 2, "cpu"))


def write_variant(folder, name, array, **grid):
    path = str(folder / f"{name}.tif")
    write_tif(path, array, **grid)
    return path


@pytest.mark.parametrize("variant,words", [
    ("pixel_size", "pixel size differs"),
    ("crs", "CRS differs"),
    ("shifted", "extent differs"),
    ("smaller", "size differs"),
])
def test_mismatched_grids_are_refused(provider, sample, tmp_path, variant, words):
    quality = read(sample["quality"])
    grid = {"pixel_size": dict(pixel=20.0), "crs": dict(epsg=32607), "shifted": dict(origin=(600100.0, 7800000.0)),
            "smaller": {}}[variant]
    array = quality[:150] if variant == "smaller" else quality
    path = write_variant(tmp_path, "quality", array, **grid)
    with pytest.raises(QgsProcessingException, match=words):
        processing.run("darts:prepareexport", {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": path,
                                               "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
                                               "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    assert not os.path.exists(tmp_path / "b.tif") and not os.path.exists(tmp_path / "e.tif")


def test_bad_rasters_get_clear_messages(provider, tmp_path):
    multi = str(tmp_path / "multi.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(multi, 10, 10, 3, gdal.GDT_Float32)
    dataset.SetGeoTransform((0, 1, 0, 0, 0, -1))
    dataset = None
    cases = {
        "bands": (multi, "3 bands"),
        "nodata": (write_variant(tmp_path, "nodata", np.full((20, 20), 255, np.uint8), nodata=255), "every pixel is nodata"),
        "range": (write_variant(tmp_path, "range", np.full((20, 20), 1.5, np.float32)), "0..1"),
        "percent": (write_variant(tmp_path, "percent", np.full((20, 20), 180, np.uint8)), "0..100"),
    }
    for path, words in cases.values():
        with pytest.raises(QgsProcessingException, match=words):
            processing.run("darts:binarize", {"PROBABILITIES": path, "OUTPUT": str(tmp_path / "out.tif")})
    assert not os.path.exists(tmp_path / "out.tif")
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_uint16_probabilities_need_an_explicit_scale(provider, tmp_path):
    path = str(tmp_path / "u16.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 20, 20, 1, gdal.GDT_UInt16)
    dataset.SetGeoTransform((0, 1, 0, 0, 0, -1))
    dataset.GetRasterBand(1).WriteArray(np.full((20, 20), 60, np.uint16))
    dataset = None
    with pytest.raises(QgsProcessingException, match="probability scale"):
        processing.run("darts:binarize", {"PROBABILITIES": path, "OUTPUT": str(tmp_path / "out.tif")})
    out = processing.run("darts:binarize", {"PROBABILITIES": path, "PROBABILITY_SCALE": "percent", "MIN_OBJECT_SIZE": 0,
                                            "OUTPUT": str(tmp_path / "out.tif")})["OUTPUT"]
    assert read(out).all()


def test_outputs_never_overwrite_inputs(provider, sample, tmp_path):
    before = open(sample["probabilities"], "rb").read()
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "OUTPUT": sample["probabilities"]})
    assert open(sample["probabilities"], "rb").read() == before


def test_cuda_without_gpu_warns_and_uses_cpu(provider, sample, tmp_path):
    from darts_postprocessing.core import gpu_available

    if gpu_available():
        pytest.skip("a GPU is present")

    class Recorder(QgsProcessingFeedback):
        warnings = []

        def pushWarning(self, text):  # noqa: N802
            self.warnings.append(text)
            super().pushWarning(text)

    feedback = Recorder()
    out = processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "DEVICE": "cuda",
                                            "OUTPUT": str(tmp_path / "b.tif")}, feedback=feedback)
    assert os.path.exists(out["OUTPUT"]) and any("CPU" in w for w in feedback.warnings)


def test_cancel_leaves_no_output(provider, sample, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= 20 and feedback.cancel())
    try:
        results = processing.run("darts:prepareexport", {
            "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"],
            "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif")}, feedback=feedback)
    except QgsProcessingException:
        results = {}
    assert feedback.isCanceled() and not results.get("OUTPUT_BINARIZED")
    assert os.listdir(tmp_path) == ["input"]


def test_missing_dependencies_are_named(provider, sample, tmp_path, package_parent):
    """With numpy hidden, the provider still loads and algorithms fail with an install hint."""
    from qgis_cli import binarize_without

    result = binarize_without("numpy", package_parent, [{"PROBABILITIES": sample["probabilities"],
                                                         "OUTPUT": str(tmp_path / "o.tif")}])
    assert "OK: False ALGORITHMS: 10" in result.stdout, result.stdout + result.stderr
    assert "numpy" in result.stdout and "apt install python3-numpy" in result.stdout, result.stdout


CANCELED = "Canceled: no output was written."


# -- cancel after the last progress step -------------------------------------------------------

@pytest.mark.parametrize("algorithm,parameters", [
    ("darts:prepareexport", lambda s, t: {"PROBABILITIES": s["probabilities"], "QUALITY_MASK": s["quality"],
                                          "OUTPUT_BINARIZED": str(t / "b.tif"), "OUTPUT_EXTENT": str(t / "e.tif"),
                                          "OUTPUT_POLYGONS": str(t / "p.gpkg"), "OUTPUT_REPORT": str(t / "r.html")}),
    ("darts:qualitymask", lambda s, t: {"INPUT": s["quality"], "SOURCE": "observations", "OUTPUT": str(t / "q.tif")}),
])
def test_cancel_after_the_last_progress_step_writes_nothing(provider, sample, tmp_path, algorithm, parameters):
    """Cancel once the progress bar is at its last step (100 %), after the algorithm's own
    last cancel check: the run still ends canceled, with every output discarded (only the
    check after execute() sees this cancel)."""
    last = 100
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= last and feedback.cancel())
    with pytest.raises(QgsProcessingException, match=CANCELED):
        processing.run(algorithm, parameters(sample, tmp_path), feedback=feedback)
    assert feedback.isCanceled()
    assert os.listdir(tmp_path) == ["input"]
    assert sorted(os.listdir(tmp_path / "input")) == ["probabilities.tif", "quality_data_mask.tif"]


def test_a_run_without_cancel_at_the_same_step_writes_everything(provider, sample, tmp_path):
    """The control for the test above: the same run, not canceled, writes its outputs."""
    results = processing.run("darts:qualitymask", {"INPUT": sample["quality"], "SOURCE": "observations",
                                                   "OUTPUT": str(tmp_path / "q.tif")})
    assert os.path.exists(results["OUTPUT"])
