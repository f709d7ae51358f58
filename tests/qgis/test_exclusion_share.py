"""EXCLUDE by share (#18 item 5): MAX_EXCLUDED_SHARE removes an object only when more than that
share of it lies in the exclusion mask, in prepareexport (in memory and block by block, as the
reference says) and in processtiles (a slump partly in water kept at 0.5, removed at 0)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import reference
from osgeo import gdal
from qgis import processing
from qgis_cli import qgis_process
from rasters import read
from reading import open_read_only

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import sample_region as scene  # noqa: E402

gdal.UseExceptions()


def water_raster(sample, path):
    """A raster mask on the sample's grid: a band of rows and a block, crossing many objects."""
    with open_read_only(sample["probabilities"]) as source:
        water = np.zeros((source.RasterYSize, source.RasterXSize), np.uint8)
        water[::7, :] = 1
        water[60:140, 30:90] = 1
        target = gdal.GetDriverByName("GTiff").Create(str(path), water.shape[1], water.shape[0], 1, gdal.GDT_Byte)
        target.SetGeoTransform(source.GetGeoTransform())
        target.SetProjection(source.GetProjection())
        target.GetRasterBand(1).WriteArray(water)
        target = None
    return str(path), water


@pytest.mark.parametrize("share", [0.0, 0.3])
@pytest.mark.parametrize("blocks", [False, True], ids=["memory", "blocks"])
def test_prepareexport_removes_objects_by_their_excluded_share(provider, sample, tmp_path, share, blocks):
    path, water = water_raster(sample, tmp_path / "water.tif")
    results = processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "MASK_EROSION_SIZE": 3,
        "MIN_OBJECT_SIZE": 10, "EXCLUDE": path, "MAX_EXCLUDED_SHARE": share, **({"MEMORY_LIMIT": 1} if blocks else {}),
        "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    _, expected, _ = reference.prepare_export(read(sample["probabilities"]), read(sample["quality"]), 0.5, 3, 10,
                                              "low_quality", exclude=water, max_share=share)
    np.testing.assert_array_equal(read(results["OUTPUT_BINARIZED"]), expected)
    if share:
        _, strict, _ = reference.prepare_export(read(sample["probabilities"]), read(sample["quality"]), 0.5, 3, 10,
                                                "low_quality", exclude=water)
        assert expected.sum() > strict.sum()  # the share keeps objects that any overlap removes


def test_a_share_with_clip_is_one_clear_line(profile, sample, tmp_path):
    path, _ = water_raster(sample, tmp_path / "water.tif")
    run = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={sample['probabilities']}",
                       f"EXCLUDE={path}", "MAX_EXCLUDED_SHARE=0.2", "BOUNDARY=clip",
                       f"OUTPUT_BINARIZED={tmp_path / 'o' / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'o' / 'e.tif'}")
    assert run.returncode != 0 and "boundary 'remove'" in run.stdout + run.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_processtiles_keeps_a_slump_partly_in_water_up_to_the_share(profile, tmp_path):
    region = scene.region(str(tmp_path / "tiles"))
    x, y, radius = region["slumps"]["a_only"]
    water = scene.exclusion_polygons(str(tmp_path / "water.gpkg"), [(x + radius, y)], half_side=radius / 2, epsg=4326)
    counts = {}
    for share in (0.0, 0.5):
        out = tmp_path / f"map-{share}.gpkg"
        run = qgis_process(profile, "run", "darts:processtiles", "--json", "--", f"INPUT_FOLDER={tmp_path / 'tiles'}",
                           f"EXCLUDE={water}", f"MAX_EXCLUDED_SHARE={share}", "WORKERS=1", f"OUTPUT={out}")
        assert run.returncode == 0, run.stdout + run.stderr
        counts[share] = json.loads(run.stdout)["results"]["FEATURES"]
        with open_read_only(out, "vector") as dataset:
            assert dataset.GetLayer(0).GetMetadataItem("DARTS_processtiles_max_excluded_share") == str(share)
    assert counts[0.0] == counts[0.5] - 1  # the slump a tenth in water: removed at 0, kept at 0.5
