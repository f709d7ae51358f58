"""core.products.steps_files, darts:erodemask, darts:binarize and darts:qualitymask on files
without QGIS: the same GeoTIFF in memory and block by block, the tags and band description the
algorithms write, the same pixels as the kernels, nothing left on cancel or bad input."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from darts_postprocessing.core import binarize, erode_mask, quality_from_scl
from darts_postprocessing.core.products.steps_files import (
    BinarizeSettings,
    ErodeMaskSettings,
    QualityMaskSettings,
    binarize_files,
    erode_mask_files,
    quality_mask_files,
)
from files_digest import folder_digest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

pytest.importorskip("dask")


@pytest.fixture()
def rasters(tmp_path):
    """A sample tile (600 x 600: MEMORY_LIMIT 1 sends both steps block by block, 2 x 2 blocks)
    and an SCL band on its grid (needs GDAL)."""
    pytest.importorskip("osgeo")
    from darts_postprocessing.core.files.geotiff import write_geotiff
    from darts_postprocessing.core.files.grids import grid_of
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=600, seed=4)
    grid = grid_of(probabilities, "p")
    scl = str(tmp_path / "input" / "scl.tif")
    write_geotiff(scl, np.random.default_rng(4).integers(0, 12, (600, 600), dtype=np.uint8), grid.geotransform,
                  grid.crs, tags={"DARTS_tileid": "T07WET"})
    return {"probabilities": probabilities, "quality": quality, "scl": scl}


def read(path):
    from darts_postprocessing.core.files.geotiff import read_band

    return read_band(str(path), "raster")[0]


def test_erode_mask_in_memory_and_in_blocks(rasters, tmp_path):
    digests = []
    for name, limit in (("memory", None), ("blocks", 1)):
        logged = []
        summary = erode_mask_files(rasters["quality"], str(tmp_path / name / "extent.tif"),
                                   ErodeMaskSettings(size=6, edge_size=2, memory_limit_mb=limit),
                                   log=lambda sentence, warning, said=logged: said.append(sentence))
        assert (summary.block is None) == (limit is None) and logged == summary.notes
        assert (limit is not None) == any("Processing in blocks of" in note for note in summary.notes)
        digests.append(folder_digest(tmp_path / name))
    assert digests[0] == digests[1]
    expected = erode_mask(read(rasters["quality"]) >= 1, 6, "cpu", edge_size=2)
    np.testing.assert_array_equal(read(tmp_path / "memory" / "extent.tif"), expected)
    written = digests[0]["extent.tif"]
    assert written["raster"][4] == "Extent of the segmentation"
    assert written["tags"]["DARTS_erodemask_size"] == "6" and written["tags"]["DARTS_erodemask_edge_size"] == "2"


def test_binarize_in_memory_and_in_blocks(rasters, tmp_path):
    for mask in (rasters["quality"], None):
        digests = []
        for name, limit in (("memory", None), ("blocks", 1)):
            folder = tmp_path / f"{name}-{bool(mask)}"
            summary = binarize_files(rasters["probabilities"], str(folder / "objects.tif"), mask,
                                     BinarizeSettings(threshold=0.4, min_object_size=10, size_connectivity=4,
                                                      memory_limit_mb=limit))
            assert (summary.block is None) == (limit is None)
            digests.append(folder_digest(folder))
        assert digests[0] == digests[1]
        written = digests[0]["objects.tif"]
        assert written["raster"][4] == "Binarized Segmentation"
        assert written["tags"]["DARTS_binarize_mask"] == ("quality_data_mask.tif" if mask else "None")
    from darts_postprocessing.core.files.geotiff import read_probabilities

    expected = binarize(read_probabilities(rasters["probabilities"], "p"), 0.4, 10, read(rasters["quality"]), "cpu",
                        size_connectivity=4, probability_scale="percent")
    np.testing.assert_array_equal(read(tmp_path / "memory-True" / "objects.tif"), expected.astype(np.uint8))


def test_quality_mask_counts_and_tags(rasters, tmp_path):
    output = tmp_path / "out" / "quality.tif"
    summary = quality_mask_files(rasters["scl"], str(output), QualityMaskSettings("scl"))
    expected = quality_from_scl(read(rasters["scl"]))
    np.testing.assert_array_equal(read(output), expected)
    assert summary.counts == {value: int((expected == value).sum()) for value in range(3)}
    assert summary.notes == ["Invalid: {} pixels, low quality: {}, high quality: {}.".format(*summary.counts.values())]
    written = folder_digest(output.parent)["quality.tif"]
    assert written["raster"][4] == "Quality Data Mask"
    assert written["tags"]["DARTS_tileid"] == "T07WET" and written["tags"]["DARTS_qualitymask_source"] == "scl"


def test_a_cancel_writes_nothing(rasters, tmp_path):
    folder = tmp_path / "out"

    def cancel(fraction, message):
        if fraction > 0.1:
            raise KeyboardInterrupt

    for limit in (None, 1):
        with pytest.raises(KeyboardInterrupt):
            binarize_files(rasters["probabilities"], str(folder / "b.tif"), rasters["quality"],
                           BinarizeSettings(memory_limit_mb=limit), cancel)
        with pytest.raises(KeyboardInterrupt):
            erode_mask_files(rasters["quality"], str(folder / "e.tif"), ErodeMaskSettings(memory_limit_mb=limit), cancel)
        assert not folder.exists() or os.listdir(folder) == []


def test_bad_input_is_one_line_naming_it_and_writes_nothing(rasters, tmp_path):
    output = tmp_path / "out" / "o.tif"
    for run, message in (
            (lambda: binarize_files(rasters["probabilities"], str(output), settings=BinarizeSettings(scale="odd")),
             "probability scale"),
            (lambda: erode_mask_files(rasters["quality"], str(output), ErodeMaskSettings(quality_level="medium")),
             "quality level"),
            (lambda: erode_mask_files(rasters["quality"], str(output), ErodeMaskSettings(memory_limit_mb=0)),
             "memory limit"),
            (lambda: quality_mask_files(rasters["scl"], str(output), QualityMaskSettings("landsat")), "source"),
            (lambda: quality_mask_files(rasters["probabilities"], str(output), QualityMaskSettings("scl")),
             "INPUT .*probabilities.tif.*Sentinel-2 scene classes are 0..11"),
            (lambda: quality_mask_files(rasters["scl"], str(output), QualityMaskSettings("udm2")),
             "INPUT has 1 bands, but 8 are expected"),
    ):
        with pytest.raises(ValueError, match=message):
            run()
    from sample_tile import write_sample_tile

    other, _ = write_sample_tile(str(tmp_path / "other"), size=200, seed=3)
    with pytest.raises(ValueError, match="MASK"):
        binarize_files(rasters["probabilities"], str(output), other)
    assert not output.exists()
