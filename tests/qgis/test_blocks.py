"""Rasters larger than MEMORY_LIMIT: the block-wise path (GDAL windows, Dask) gives the same
files as the in-memory path, through processing.run, a VRT mosaic, qgis_process and a real
dask.distributed cluster of worker processes."""

import os

import numpy as np
import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingFeedback
from rasters import read
from reading import open_read_only, pixels
from sample_tile import write_sample_tile
from feedback import Log
from vectors import polygons_by_id

gdal.UseExceptions()
SIZE = 1300  # with MEMORY_LIMIT=1 (MB): blocks of 512 x 512, 3 x 3 of them, the last ones cut


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    probabilities, quality = write_sample_tile(str(folder / "input"), size=SIZE, seed=4)
    return {"probabilities": probabilities, "quality": quality, "folder": folder}


def both_paths(algorithm, parameters, outputs, folder, **block_options):
    """Run `algorithm` in memory and block-wise; the output files' pixels, for each path."""
    results = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1, **block_options})):
        target = folder / mode
        feedback = Log(warnings=False)
        run = processing.run(algorithm, {**parameters, **extra, **{o: str(target / f"{o}.tif") for o in outputs}},
                             feedback=feedback)
        assert ("Processing in blocks of 512 x 512" in feedback.text) == (mode == "blocks"), feedback.text
        results[mode] = {o: read(run[o]) for o in outputs}
        assert not [f for f in os.listdir(target) if "partial" in f]
    return results


def assert_same(results, outputs):
    for output in outputs:
        memory, blocks = results["memory"][output], results["blocks"][output]
        assert memory.dtype == blocks.dtype, output
        np.testing.assert_array_equal(blocks, memory, err_msg=output)


def test_erodemask_in_blocks(provider, big, tmp_path):
    results = both_paths("darts:erodemask", {"MASK": big["quality"], "SIZE": 20, "EDGE_SIZE": 7}, ["OUTPUT"], tmp_path)
    assert_same(results, ["OUTPUT"])
    assert 0 < results["memory"]["OUTPUT"].mean() < 1


@pytest.mark.parametrize("connectivity", ["8", "4"])
def test_binarize_in_blocks(provider, big, tmp_path, connectivity):
    results = both_paths("darts:binarize", {"PROBABILITIES": big["probabilities"], "MASK": big["quality"],
                                            "THRESHOLD": 0.4, "MIN_OBJECT_SIZE": 40,
                                            "SIZE_CONNECTIVITY": connectivity}, ["OUTPUT"], tmp_path)
    assert_same(results, ["OUTPUT"])
    assert results["memory"]["OUTPUT"].any()


def test_block_size_follows_the_memory_limit():
    from darts_postprocessing.core.lazy.blockwise import block_size

    assert block_size(14, 1, 2) == 512 and block_size(14, 10 ** 6, 2) == 4096
    assert block_size(14, 1500, 2) % 256 == 0 and 512 < block_size(14, 1500, 2) < 4096


PREPARE_OUTPUTS = ["OUTPUT_BINARIZED", "OUTPUT_EXTENT", "OUTPUT_PROBABILITIES"]


@pytest.mark.parametrize("boundary,connectivity", [("remove", "8"), ("clip", "4")])
def test_prepareexport_in_blocks(provider, big, tmp_path, boundary, connectivity):
    results = both_paths("darts:prepareexport", {
        "PROBABILITIES": big["probabilities"], "QUALITY_MASK": big["quality"], "MASK_EROSION_SIZE": 10,
        "MIN_OBJECT_SIZE": 32, "QUALITY_LEVEL": "low_quality", "BOUNDARY": boundary,
        "SIZE_CONNECTIVITY": connectivity}, PREPARE_OUTPUTS, tmp_path)
    assert_same(results, PREPARE_OUTPUTS)
    assert results["memory"]["OUTPUT_BINARIZED"].any()


def vrt_mosaic(big, tmp_path):
    """A 2 x 2 VRT mosaic of shifted copies of the tile, built with GDAL."""
    tiles = []
    for row in range(2):
        for col in range(2):
            path = str(tmp_path / f"tile_{row}_{col}.tif")
            with open_read_only(big["probabilities"]) as source:
                x0, dx, _, y0, _, dy = source.GetGeoTransform()
                copy = gdal.Translate(path, source)
                copy.SetGeoTransform((x0 + col * SIZE * dx, dx, 0, y0 + row * SIZE * dy, 0, dy))
                copy = None
            tiles.append(path)
    mosaic = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(mosaic, tiles)
    return mosaic


def test_prepareexport_of_a_vrt_mosaic_in_blocks(provider, big, tmp_path):
    results = both_paths("darts:prepareexport", {"PROBABILITIES": vrt_mosaic(big, tmp_path), "MASK_EROSION_SIZE": 5,
                                                 "MIN_OBJECT_SIZE": 20}, PREPARE_OUTPUTS, tmp_path)
    assert_same(results, PREPARE_OUTPUTS)
    assert results["memory"]["OUTPUT_BINARIZED"].shape == (2 * SIZE, 2 * SIZE)


def assert_same_polygons(memory, blocks):
    """Same features: attributes equal, geometries covering the same pixels with the same vertices."""
    assert sorted(memory) == sorted(blocks) and memory
    for region, (attributes, geometry) in memory.items():
        other_attributes, other = blocks[region]
        assert other_attributes == attributes, region
        assert other.IsValid() and geometry.SymDifference(other).IsEmpty(), region
        assert other.GetGeometryType() == geometry.GetGeometryType()
        assert sum(len(r.GetPoints()) for p in other for r in p) == sum(len(r.GetPoints()) for p in geometry for r in p)


def test_polygonize_in_blocks(provider, big, tmp_path):
    binarized = str(tmp_path / "b.tif")
    processing.run("darts:binarize", {"PROBABILITIES": big["probabilities"], "THRESHOLD": 0.3, "MIN_OBJECT_SIZE": 0,
                                      "OUTPUT": binarized})
    runs = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1})):
        out = tmp_path / f"{mode}.gpkg"
        processing.run("darts:polygonize", {"BINARIZED": binarized, "PROBABILITIES": big["probabilities"],
                                            "OUTPUT": str(out), **extra})
        runs[mode] = polygons_by_id(out)
    assert_same_polygons(runs["memory"], runs["blocks"])
    with open_read_only(binarized) as dataset:
        x0 = dataset.GetGeoTransform()[0]
    crossing = [region for region, (_, geometry) in runs["memory"].items()  # over the 512-pixel block lines
                if any(geometry.GetEnvelope()[0] < x0 + 5120 * k < geometry.GetEnvelope()[1] for k in (1, 2))]
    assert crossing


def test_prepareexport_polygons_and_report_in_blocks(provider, big, tmp_path):
    runs = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1})):
        out = tmp_path / mode
        processing.run("darts:prepareexport", {
            "PROBABILITIES": big["probabilities"], "QUALITY_MASK": big["quality"], "MIN_OBJECT_SIZE": 10, **extra,
            "OUTPUT_BINARIZED": str(out / "b.tif"), "OUTPUT_EXTENT": str(out / "e.tif"),
            "OUTPUT_POLYGONS": str(out / "p.gpkg"), "OUTPUT_REPORT": str(out / "r.html")})
        runs[mode] = (polygons_by_id(out / "p.gpkg"), (out / "r.html").read_text(), read(out / "b.tif"))
        assert sorted(os.listdir(out)) == ["b.tif", "e.tif", "p.gpkg", "r.html"]
    np.testing.assert_array_equal(runs["blocks"][2], runs["memory"][2])
    assert_same_polygons(runs["memory"][0], runs["blocks"][0])
    import re

    def numbers(page):
        return {key: value for key, value in re.findall(r'id="([a-z_0-9]+)"[^>]*>([^<]*)<', page)}

    assert numbers(runs["memory"][1]) == numbers(runs["blocks"][1]) and "kept_area_m2" in numbers(runs["memory"][1])


def test_prepareexport_on_a_dask_cluster_through_qgis_process(profile, big, tmp_path, cluster):
    from qgis_cli import qgis_process

    options = ["MASK_EROSION_SIZE=10", "MIN_OBJECT_SIZE=32", "QUALITY_LEVEL=low_quality"]
    runs = {}
    for mode, extra in (("memory", []), ("cluster", [f"DASK_SCHEDULER={cluster}"])):
        out = tmp_path / mode
        run = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={big['probabilities']}",
                           f"QUALITY_MASK={big['quality']}", *options, *extra,
                           f"OUTPUT_BINARIZED={out / 'b.tif'}", f"OUTPUT_EXTENT={out / 'e.tif'}")
        assert run.returncode == 0, run.stdout + run.stderr
        runs[mode] = run.stdout
        assert sorted(os.listdir(out)) == ["b.tif", "e.tif"]
    assert "dask cluster" in runs["cluster"] and "Processing in blocks" in runs["cluster"]
    for name in ("b.tif", "e.tif"):
        np.testing.assert_array_equal(read(tmp_path / "cluster" / name), read(tmp_path / "memory" / name))


def test_exporttile_on_a_dask_cluster_through_qgis_process(provider, profile, big, tmp_path, cluster):
    """The tile folder written on a cluster's worker processes (which get only the core) is the
    one written in memory: thumbnail and quicklook included."""
    import json

    from qgis_cli import qgis_process

    prepared = processing.run("darts:prepareexport", {"PROBABILITIES": big["probabilities"],
                                                      "QUALITY_MASK": big["quality"],
                                                      "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
                                                      "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    for mode, extra in (("memory", []), ("cluster", [f"DASK_SCHEDULER={cluster}"])):
        run = qgis_process(profile, "run", "darts:exporttile", "--", f"PROBABILITIES={big['probabilities']}",
                           f"BINARIZED={prepared['OUTPUT_BINARIZED']}", f"EXTENT={prepared['OUTPUT_EXTENT']}", *extra,
                           f"OUTPUT_FOLDER={tmp_path / mode / 'T06WVS'}")
        assert run.returncode == 0, run.stdout + run.stderr
        assert ("dask cluster" in run.stdout) == (mode == "cluster")
    folders = {mode: tmp_path / mode / "T06WVS" for mode in ("memory", "cluster")}
    assert sorted(os.listdir(folders["cluster"])) == sorted(os.listdir(folders["memory"]))
    for name in ("probabilities.tif", "binarized.tif", "extent.tif", "thumbnail.jpg", "quicklook.png"):
        np.testing.assert_array_equal(pixels(folders["cluster"] / name), pixels(folders["memory"] / name), err_msg=name)
    assert_same_polygons(polygons_by_id(folders["memory"] / "prediction_segments.gpkg"),
                         polygons_by_id(folders["cluster"] / "prediction_segments.gpkg"))
    records = {mode: json.loads((folder / "darts_inference.json").read_text()) for mode, folder in folders.items()}
    assert {**records["cluster"], "DARTS_exportdate": ""} == {**records["memory"], "DARTS_exportdate": ""}


def test_an_unreachable_scheduler_is_a_clear_error(profile, big, tmp_path):
    from qgis_cli import qgis_process

    run = qgis_process(profile, "run", "darts:binarize", "--", f"PROBABILITIES={big['probabilities']}",
                       "DASK_SCHEDULER=tcp://127.0.0.1:9", f"OUTPUT={tmp_path / 'b.tif'}")
    assert run.returncode != 0
    assert "cannot connect to the dask scheduler at 'tcp://127.0.0.1:9'" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert not os.listdir(tmp_path)


class CancelMidway(QgsProcessingFeedback):
    """Presses cancel once the block-wise computation is under way."""

    def setProgress(self, progress):  # noqa: N802
        super().setProgress(progress)
        if progress > 30:
            self.cancel()


def test_cancel_in_blocks_leaves_nothing(provider, big, tmp_path):
    from qgis.core import QgsProcessingException

    feedback = CancelMidway()
    with pytest.raises(QgsProcessingException, match="Canceled: no output was written"):
        processing.run("darts:prepareexport", {
            "PROBABILITIES": big["probabilities"], "QUALITY_MASK": big["quality"], "MEMORY_LIMIT": 1,
            "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif"),
            "OUTPUT_PROBABILITIES": str(tmp_path / "p.tif"), "OUTPUT_POLYGONS": str(tmp_path / "s.gpkg")},
            feedback=feedback)
    assert feedback.isCanceled()
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("as_float", [False, True])
def test_exporttile_in_blocks(provider, big, tmp_path, as_float):
    """Every file of the tile folder, an ensemble subset's included, the same block-wise: the
    rasters' and images' pixels, the polygons, darts_inference.json's bytes (but the export date)."""
    import json

    from sample_tile import percent, sample_arrays, write_tif

    probabilities = big["probabilities"]
    if as_float:
        probabilities, _ = write_sample_tile(str(tmp_path / "float"), size=SIZE, seed=4, as_float=True)
    member = str(tmp_path / "probabilities-member.tif")
    values = sample_arrays(SIZE, 6)[0]  # of the same kind as the probabilities (prepareexport asks that)
    if as_float:
        write_tif(member, values, nodata=float("nan"))
    else:
        write_tif(member, percent(values), nodata=255)
    prepared = processing.run("darts:prepareexport", {
        "PROBABILITIES": probabilities, "QUALITY_MASK": big["quality"], "SUBSET_PROBABILITIES": [member],
        "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1})):
        feedback = Log(warnings=False)
        processing.run("darts:exporttile", {"PROBABILITIES": probabilities, "BINARIZED": str(tmp_path / "b.tif"),
                                            "EXTENT": str(tmp_path / "e.tif"), "SUBSET_PROBABILITIES": [member],
                                            "SUBSET_BINARIZED": prepared["OUTPUT_SUBSET_BINARIZED"],
                                            "OUTPUT_FOLDER": str(tmp_path / mode / "T06WVS"), **extra},
                       feedback=feedback)
        assert ("Processing in blocks" in feedback.text) == (mode == "blocks")
    folders = {mode: tmp_path / mode / "T06WVS" for mode in ("memory", "blocks")}
    names = sorted(os.listdir(folders["memory"]))
    assert sorted(os.listdir(folders["blocks"])) == names and len(names) == 11
    for name in ("probabilities.tif", "binarized.tif", "extent.tif", "quicklook.png", "thumbnail.jpg",
                 "probabilities-member.tif", "binarized-member.tif"):
        with open_read_only(folders["memory"] / name) as memory, open_read_only(folders["blocks"] / name) as blocks:
            np.testing.assert_array_equal(blocks.ReadAsArray(), memory.ReadAsArray(), err_msg=name)
            assert blocks.GetRasterBand(1).GetNoDataValue() == memory.GetRasterBand(1).GetNoDataValue()
            assert blocks.GetRasterBand(1).GetDescription() == memory.GetRasterBand(1).GetDescription()
            if name.endswith(".tif"):
                assert blocks.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "LZW"
                assert blocks.GetGeoTransform() == memory.GetGeoTransform()
    for name in ("prediction_segments.gpkg", "prediction_extent.gpkg", "prediction_segments-member.gpkg"):
        assert_same_polygons(polygons_by_id(folders["memory"] / name), polygons_by_id(folders["blocks"] / name))
    texts = {mode: (folders[mode] / "darts_inference.json").read_text() for mode in ("memory", "blocks")}
    dates = {mode: json.loads(text)["DARTS_exportdate"] for mode, text in texts.items()}
    assert texts["blocks"].replace(dates["blocks"], dates["memory"]) == texts["memory"]


def test_a_damaged_raster_in_blocks_is_a_one_line_error(profile, big, tmp_path):
    from qgis_cli import qgis_process

    damaged = tmp_path / "damaged.tif"
    data = open(big["probabilities"], "rb").read()
    damaged.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    run = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={damaged}", "MEMORY_LIMIT=1",
                       f"OUTPUT_BINARIZED={out / 'b.tif'}", f"OUTPUT_EXTENT={out / 'e.tif'}")
    assert run.returncode != 0
    assert f"PROBABILITIES: cannot read '{damaged}'" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert not out.exists() or not os.listdir(out)


def test_blocks_refuse_what_memory_refuses(provider, big, tmp_path):
    """A raster with two bands, or with no prediction at all, is refused block-wise too."""
    from qgis.core import QgsProcessingException

    two_bands = str(tmp_path / "two.tif")
    gdal.Translate(two_bands, big["probabilities"], bandList=[1, 1])
    empty = str(tmp_path / "empty.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(empty, SIZE, SIZE, 1, gdal.GDT_Float32)
    dataset.GetRasterBand(1).Fill(float("nan"))
    dataset = None
    out = tmp_path / "out"
    for algorithm, parameters in (("darts:prepareexport", {"OUTPUT_BINARIZED": str(out / "b.tif"),
                                                           "OUTPUT_EXTENT": str(out / "e.tif")}),
                                  ("darts:binarize", {"OUTPUT": str(out / "b.tif")})):
        for path, message in ((two_bands, "has 2 bands, but one band is expected"),
                              (empty, "has no valid pixel: every pixel is nodata")):
            for extra in ({}, {"MEMORY_LIMIT": 1}):
                with pytest.raises(QgsProcessingException, match=message):
                    processing.run(algorithm, {"PROBABILITIES": path, **parameters, **extra})
                assert not out.exists() or not os.listdir(out)


def test_without_dask_the_block_path_says_what_to_install(big, tmp_path, package_parent):
    """With dask hidden, a raster above MEMORY_LIMIT fails with an install hint (in memory it runs)."""
    from qgis_cli import binarize_without

    parameters = {"PROBABILITIES": big["probabilities"], "OUTPUT": str(tmp_path / "o.tif")}
    result = binarize_without("dask", package_parent, [parameters, {**parameters, "MEMORY_LIMIT": 1}])
    assert "RUN 0 OK: True" in result.stdout and "RUN 1 OK: False" in result.stdout, result.stdout + result.stderr
    assert "must go block by block" in result.stdout and "apt install python3-dask" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
