"""core.products.prepare_export_files, the whole prepareexport run on files, without QGIS: the
same files in memory and block by block, the arrays of prepare_export, nothing left on cancel,
and prepare_export_thresholds without the masked probabilities (issue 23) giving the same."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from darts_postprocessing.core import prepare_export, prepare_export_thresholds
from darts_postprocessing.core.products.prepare_export_files import (
    PrepareExportInputs,
    PrepareExportOutputs,
    PrepareExportSettings,
    prepare_export_files,
)
from files_digest import folder_digest
from reading import pixels

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

pytest.importorskip("dask")


@pytest.fixture()
def tile(tmp_path):
    """A sample tile and an ensemble member as GeoTIFFs (needs GDAL: the venv has none)."""
    pytest.importorskip("osgeo")
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=300, seed=3)
    member, _ = write_sample_tile(str(tmp_path / "member"), size=300, seed=4)
    return {"probabilities": probabilities, "quality": quality, "member": member}


def outputs_in(folder, **more):
    return PrepareExportOutputs(str(folder / "binarized.tif"), str(folder / "extent.tif"), **more)


@pytest.mark.parametrize("settings", [
    PrepareExportSettings(),
    PrepareExportSettings(boundary="clip", size_connectivity=4, statistics="percent", edge_erosion_size=0),
    PrepareExportSettings(thresholds=(0.4, 0.6), mask_erosion_size=3),
])
def test_in_memory_and_in_blocks_write_the_same_files(tile, tmp_path, settings):
    inputs = PrepareExportInputs(tile["probabilities"], tile["quality"], {"member": tile["member"]})
    digests, summaries = [], []
    for name, limit in (("memory", None), ("blocks", 1)):
        folder = tmp_path / name
        summary = prepare_export_files(
            inputs, outputs_in(folder, probabilities=str(folder / "p.tif"), polygons=str(folder / "objects.gpkg")),
            PrepareExportSettings(**{**settings.__dict__, "memory_limit_mb": limit}))
        digests.append(folder_digest(folder))
        summaries.append(summary)
        assert sorted(os.listdir(folder)) == sorted(os.path.basename(path) for path in summary.files)
    memory, blocks = digests
    for digest in (memory, blocks):  # the memory limit is not recorded: it changes how, not what
        for found in digest.values():
            assert not any("memory" in key.lower() for key in found["tags"])
    assert memory == blocks
    assert summaries[0].block is None and summaries[1].block
    assert [run.counts for run in summaries[0].runs] == [run.counts for run in summaries[1].runs]
    assert summaries[0].extent_pixels == summaries[1].extent_pixels
    assert any("Processing in blocks of" in note for note in summaries[1].notes)


@pytest.mark.parametrize("settings", [PrepareExportSettings(), PrepareExportSettings(quality_level="high_quality",
                                                                                   edge_erosion_size=3)])
def test_a_tile_of_several_blocks_gives_the_in_memory_files(tmp_path, settings):
    """A tile of 3 x 3 blocks (512 px, the smallest): the quality mask eroded as it is read,
    each block with its halo, and objects across block sides give the in-memory files."""
    pytest.importorskip("osgeo")
    from sample_tile import write_sample_tile

    from vectors import polygons_by_id

    from writing import write_raster

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=1100, seed=5)
    # Invalid pixels just the erosion's reach away from the block sides (512, 1024), on both sides.
    speckled, reach = pixels(quality), settings.mask_erosion_size
    for side in (512, 1024):
        for at, offset in ((side - reach, 37), (side + reach - 1, 85)):
            speckled[at, offset::97] = 0
            speckled[offset::89, at] = 0
    quality = write_raster(tmp_path / "input" / "speckled.tif", speckled)
    rasters, polygons = [], []
    for name, limit in (("memory", None), ("blocks", 1)):
        folder = tmp_path / name
        summary = prepare_export_files(PrepareExportInputs(probabilities, quality),
                                       outputs_in(folder, polygons=str(folder / "objects.gpkg")),
                                       PrepareExportSettings(**{**settings.__dict__, "memory_limit_mb": limit}))
        rasters.append({file: found for file, found in folder_digest(folder).items() if file.endswith(".tif")})
        polygons.append(polygons_by_id(folder / "objects.gpkg"))
    assert summary.block == 512 and len(rasters[0]) == 2
    assert rasters[0] == rasters[1]
    memory, blocks = polygons
    assert sorted(memory) == sorted(blocks) and len(memory) > 20
    for region, (attributes, geometry) in memory.items():
        assert blocks[region][0] == attributes  # objects across block sides: one feature, the same statistics
        assert geometry.SymDifference(blocks[region][1]).IsEmpty()


def test_the_files_hold_prepare_exports_arrays(tile, tmp_path):
    summary = prepare_export_files(PrepareExportInputs(tile["probabilities"], tile["quality"]),
                                   outputs_in(tmp_path / "out", probabilities=str(tmp_path / "out" / "p.tif")),
                                   PrepareExportSettings(mask_erosion_size=3, min_object_size=20, quality_level=2))
    percent = pixels(tile["probabilities"])
    tile_arrays = {"probabilities": np.where(percent == 255, np.nan, percent / np.float32(100)).astype(np.float32),
                   "quality_data_mask": pixels(tile["quality"])}
    counts = {}
    expected = prepare_export(tile_arrays, 0.5, 3, 20, 2, device="cpu", probability_scale="percent",
                              object_counts=counts)
    np.testing.assert_array_equal(pixels(summary.runs[0].binarized), expected["binarized_segmentation"])
    np.testing.assert_array_equal(pixels(summary.extent), expected["extent"])
    np.testing.assert_array_equal(pixels(summary.probabilities), expected["probabilities"])
    assert summary.runs[0].counts == counts["binarized_segmentation"]
    assert summary.runs[0].kept_pixels == int(expected["binarized_segmentation"].sum())
    assert summary.extent_pixels == int(expected["extent"].sum())


def test_without_quality_mask_every_predicted_pixel_is_valid(tile, tmp_path):
    logged = []
    summary = prepare_export_files(PrepareExportInputs(tile["member"]), outputs_in(tmp_path / "out"),
                                   log=lambda sentence, warning: logged.append((sentence, warning)))
    assert ("No quality mask: every pixel with a prediction counts as high quality.", False) in logged
    assert summary.notes == [sentence for sentence, warning in logged if not warning]


def test_a_cancel_writes_nothing(tile, tmp_path):
    class Cancel(Exception):
        pass

    def progress(fraction, message):
        if message == "Writing the outputs":
            raise Cancel

    with pytest.raises(Cancel):
        prepare_export_files(PrepareExportInputs(tile["probabilities"], tile["quality"]),
                             outputs_in(tmp_path / "out", polygons=str(tmp_path / "out" / "o.gpkg")),
                             progress=progress)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_bad_settings_fail_before_any_file(tile, tmp_path):
    for settings, message in ((PrepareExportSettings(thresholds=(0.5, 0.50)), "given twice"),
                              (PrepareExportSettings(threshold=1.5), "threshold"),
                              (PrepareExportSettings(memory_limit_mb=0), "memory limit")):
        with pytest.raises(ValueError, match=message):
            prepare_export_files(PrepareExportInputs(tile["probabilities"]), outputs_in(tmp_path / "out"), settings)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("boundary", ["remove", "clip"])
def test_without_masked_probabilities_the_results_are_the_same(boundary):
    rng = np.random.default_rng(5)
    probabilities = rng.random((120, 130), dtype=np.float32)
    probabilities[:5] = np.nan
    tile = {"probabilities": probabilities, "probabilities-a": probabilities[::-1].copy(),
            "quality_data_mask": rng.integers(0, 3, (120, 130), dtype=np.uint8)}
    options = dict(mask_erosion_size=1, min_object_size=3, quality_level=1, ensemble_subsets=["a"], device="cpu",
                   boundary=boundary)
    masked = prepare_export_thresholds(tile, [0.3, 0.6], **options)
    unmasked = prepare_export_thresholds(tile, [0.3, 0.6], **options, masked_probabilities=False)
    for threshold in (0.3, 0.6):
        for name in ("extent", "binarized_segmentation", "binarized_segmentation-a"):
            np.testing.assert_array_equal(masked[threshold][name], unmasked[threshold][name])
        for name in ("probabilities", "probabilities-a"):
            assert unmasked[threshold][name] is tile[name]  # as given, no copy
            inside = masked[threshold]["binarized_segmentation"]
            np.testing.assert_array_equal(masked[threshold][name][inside], tile[name][inside])


def _rewritten(source, target, transform, nodata):
    """`source`'s pixels through `transform` into the GeoTIFF `target` (the same grid), with `nodata`."""
    from sample_tile import write_tif

    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_tif(target, transform(pixels(source)), nodata=nodata)
    return target


@pytest.mark.parametrize("settings", [
    PrepareExportSettings(),
    PrepareExportSettings(statistics="percent", parts=True, boundary="clip", size_connectivity=4),
    PrepareExportSettings(thresholds=(0.4, 0.6), mask_erosion_size=3, statistics="percent"),
])
def test_uint8_percent_kept_as_stored_writes_what_the_float_path_writes(tile, tmp_path, settings):
    """In memory, without OUTPUT_PROBABILITIES, DARTS' uint8 percent is thresholded in uint8 and
    its statistics looked up per object pixel (issue 23): the same files as block by block (which
    decodes it to float32), with an ensemble member, without a quality mask and with a nodata
    value other than 255 (0, the pixels that held 0 set to 1)."""
    zero_nodata = _rewritten(tile["probabilities"], str(tmp_path / "zero" / "probabilities.tif"),
                             lambda p: np.where(p == 0, 1, np.where(p == 255, 0, p)).astype(np.uint8), 0)
    for case, inputs in (("member", PrepareExportInputs(tile["probabilities"], tile["quality"],
                                                        {"member": tile["member"]})),
                         ("no quality", PrepareExportInputs(tile["member"])),
                         ("nodata 0", PrepareExportInputs(zero_nodata, tile["quality"]))):
        digests = []
        for name, limit in (("memory", None), ("blocks", 1)):
            folder = tmp_path / case / name
            prepare_export_files(inputs, outputs_in(folder, polygons=str(folder / "objects.gpkg")),
                                 PrepareExportSettings(**{**settings.__dict__, "memory_limit_mb": limit}))
            digests.append(folder_digest(folder))
        assert digests[0] == digests[1], case


def test_uint8_percent_in_memory_equals_its_floats_in_memory(tile, tmp_path):
    """The uint8 file and a float32 file of the values it decodes to (read as percent 0..100:
    float32(v) / 100, the same floats): the same rasters and polygons with their statistics."""
    floats = _rewritten(tile["probabilities"], str(tmp_path / "float" / "probabilities.tif"),
                        lambda p: np.where(p == 255, np.nan, p).astype(np.float32), float("nan"))
    digests = []
    for name, path in (("uint8", tile["probabilities"]), ("float", floats)):
        folder = tmp_path / name / "out"
        prepare_export_files(PrepareExportInputs(path, tile["quality"]),
                             outputs_in(folder, polygons=str(folder / "objects.gpkg")),
                             PrepareExportSettings(scale="percent", thresholds=(0.29, 0.5, 0.57)))
        digests.append(folder_digest(folder))
    assert digests[0] == digests[1]
