"""core.products.polygonize_files, the whole darts:polygonize run on files, without QGIS: the
same GeoPackage in memory and block by block, a layer written into an existing GeoPackage,
nothing left on cancel, bad settings refused before any file."""

import os
import sys
from pathlib import Path

import pytest
from darts_postprocessing.core.products.polygonize_files import PolygonizeSettings, polygonize_files
from darts_postprocessing.core.products.prepare_export_files import (
    PrepareExportInputs,
    PrepareExportOutputs,
    prepare_export_files,
)
from files_digest import digest, folder_digest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

pytest.importorskip("dask")


@pytest.fixture()
def rasters(tmp_path):
    """A sample tile's probabilities and its binarized objects as GeoTIFFs (needs GDAL)."""
    pytest.importorskip("osgeo")
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=300, seed=3)
    folder = tmp_path / "binarized"
    summary = prepare_export_files(PrepareExportInputs(probabilities, quality),
                                   PrepareExportOutputs(str(folder / "binarized.tif"), str(folder / "extent.tif")))
    return {"probabilities": probabilities, "binarized": summary.runs[0].binarized}


@pytest.mark.parametrize("settings", [
    PolygonizeSettings(),
    PolygonizeSettings(statistics="percent", parts=True),
])
def test_in_memory_and_in_blocks_write_the_same_geopackage(rasters, tmp_path, settings):
    digests, summaries = [], []
    for name, limit in (("memory", None), ("blocks", 1)):
        folder = tmp_path / name
        logged = []
        summary = polygonize_files(rasters["binarized"], str(folder / "objects.gpkg"), rasters["probabilities"],
                                   PolygonizeSettings(**{**settings.__dict__, "memory_limit_mb": limit}),
                                   log=lambda sentence, warning, said=logged: said.append(sentence))
        assert sorted(os.listdir(folder)) == ["objects.gpkg"]
        assert sorted(logged) == sorted(summary.notes + summary.warnings)
        assert summary.notes[-1] == f"{summary.count} objects polygonized."
        digests.append(folder_digest(folder))
        summaries.append(summary)
    memory, blocks = digests
    assert memory == blocks
    assert summaries[0].block is None and summaries[1].block
    assert summaries[0].count == summaries[1].count > 0
    assert any("Processing in blocks of" in note for note in summaries[1].notes)
    fields = [name for name, _ in memory["objects.gpkg"]["layer objects"][0]]
    assert {"Region_ID", "npixel", "area_m2", "min", "max", "mean", "median", "std"} <= set(fields)
    tags = memory["objects.gpkg"]["tags"]
    assert tags["DARTS_polygonize_binarized"] == "binarized.tif"
    assert tags["DARTS_polygonize_polygon_layout"] == ("parts" if settings.parts else "objects")
    assert not any("memory" in key.lower() for key in tags)


def test_without_probabilities_and_into_a_layer_of_an_existing_geopackage(rasters, tmp_path):
    first = str(tmp_path / "first" / "objects.gpkg")
    alone = polygonize_files(rasters["binarized"], first)
    assert "mean" not in [name for name, _ in digest(first)["layer objects"][0]]
    target = str(tmp_path / "both.gpkg")
    polygonize_files(rasters["binarized"], target, rasters["probabilities"])
    summary = polygonize_files(rasters["binarized"], target, layer="again", settings=PolygonizeSettings(
        memory_limit_mb=1))
    layers = digest(target)
    assert sorted(key for key in layers if key.startswith("layer ")) == ["layer again", "layer both"]
    assert summary.count == alone.count == len(layers["layer again"][2])
    assert layers["layer again"][:3] == digest(first)["layer objects"][:3]


def test_a_cancel_writes_nothing(rasters, tmp_path):
    folder = tmp_path / "out"

    def cancel(fraction, message):
        if fraction > 0.05:
            raise KeyboardInterrupt

    for limit in (None, 1):
        with pytest.raises(KeyboardInterrupt):
            polygonize_files(rasters["binarized"], str(folder / "objects.gpkg"), rasters["probabilities"],
                             PolygonizeSettings(memory_limit_mb=limit), cancel)
        assert not folder.exists() or os.listdir(folder) == []


def test_bad_settings_and_grids_fail_before_any_file(rasters, tmp_path):
    output = tmp_path / "out" / "objects.gpkg"
    for settings, message in ((PolygonizeSettings(statistics="permille"), "statistics"),
                              (PolygonizeSettings(scale="odd"), "probability scale"),
                              (PolygonizeSettings(memory_limit_mb=0), "memory limit")):
        with pytest.raises(ValueError, match=message):
            polygonize_files(rasters["binarized"], str(output), settings=settings)
    from sample_tile import write_sample_tile

    other, _ = write_sample_tile(str(tmp_path / "other"), size=200, seed=3)
    with pytest.raises(ValueError, match="PROBABILITIES"):
        polygonize_files(rasters["binarized"], str(output), other)
    assert not output.exists()
