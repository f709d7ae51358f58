"""Real DARTS runs in (#18): tile folders as DARTS' exporter writes them (no quality mask, no
extent raster), named by dated scene ids, in two UTM zones and two years, merged per year."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("osgeo", reason="GDAL's Python bindings (osgeo) are not installed in this Python")
from osgeo import gdal, ogr, osr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from darts_folders import IDS, darts_run  # noqa: E402
from darts_postprocessing.core import TileSettings, process_tiles  # noqa: E402
from darts_postprocessing.core.files.atomic import AtomicFiles  # noqa: E402
from darts_postprocessing.core.regions.darts_ids import date_of_id, tile_date  # noqa: E402
from darts_postprocessing.core.regions.process_tiles import merge_tiles  # noqa: E402
from darts_postprocessing.core.regions.tiles import find_tiles, tile_extent  # noqa: E402
from reading import open_read_only, pixels  # noqa: E402

gdal.UseExceptions()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("darts") / "run"
    return {**darts_run(folder, subsets=("with_tcvis", "without_tcvis")), "root": str(folder)}


@pytest.mark.parametrize("tile_id, date, year", [
    ("20240715T213529_20240715T213531_T07WET", "2024-07-15", 2024),
    ("S2B_MSIL2A_20190716T213529_N0213_R086_T08WMC_20190716T235959", "2019-07-16", 2019),
    ("20190717_213000_31_2474", "2019-07-17", 2019),
    ("5226109_4956307_2024-07-18_227b", "2024-07-18", 2024),
    ("Sentinel-2_mosaic_2024_Q3_07WET_0_0", None, 2024),
    ("4956307", None, None),
    ("tile_A", None, None),
    ("T07WET_20241399", None, None),  # not a date
])
def test_every_darts_id_form_gives_its_date(tile_id, date, year):
    found = date_of_id(tile_id)
    assert (found.date.isoformat() if found.date else None, found.year) == (date, year)


def test_an_orthotile_id_without_date_falls_back_to_the_scene_folder():
    found = tile_date([("darts_inference.json", "4956307"), ("the folder name", "5226109_4956307_2024-07-18_227b")])
    assert found.date.isoformat() == "2024-07-18" and "folder" in found.source
    assert tile_date([("the folder name", "tile_A")]).year is None


def test_darts_folders_are_found_and_metadata_folders_passed_over(run):
    looked_at = []
    sources, skipped = find_tiles(run["root"], looked_at=looked_at)
    assert not skipped
    assert sorted(source.tile_id for source in sources) == sorted(run["ids"].values())
    assert all(source.extent_polygons.endswith("prediction_extent.gpkg") and not source.quality and not source.extent
               for source in sources)
    assert any(folder.endswith("_metadata_2025-01-01") for folder, _ in looked_at)


def test_the_extent_polygons_burnt_at_pixel_centres_equal_the_valid_probabilities(run):
    from darts_postprocessing.core.files.grids import grid_of

    for source in find_tiles(run["root"])[0]:
        percent = pixels(source.probabilities)
        extent = tile_extent(source, np.where(percent == 255, np.nan, percent / 100.0), grid_of(source.probabilities, "p"))
        np.testing.assert_array_equal(extent, percent != 255)
        assert (percent == 255).any() and (percent != 255).any()


def test_a_darts_run_becomes_per_year_maps(run, tmp_path):
    region = process_tiles(run["root"], str(tmp_path / "map.gpkg"), layer="slumps")
    assert not region.skipped and len(region.tiles) == 6
    assert set(region.groups) == {2019, 2024}
    assert region.groups[2019]["features"] == len(run["slumps"][2019])  # every slump once a year
    assert region.groups[2024]["features"] == len(run["slumps"][2024])
    dates = {tile.tile_id: tile.date for tile in region.tiles}
    for (year, _), tile_id in run["ids"].items():
        assert dates[tile_id].year == year
    for key, date in run["dates"].items():
        found = dates[run["ids"][key]].date
        assert (found.isoformat() if found else None) == date
    with open_read_only(tmp_path / "map.gpkg", "vector") as dataset:  # kept open while its layers are read
        layer = dataset.GetLayerByName("slumps")
        features = [(f["tile_id"], f["year"], f["date"], f["n_tiles"]) for f in layer]
        assert all(dates[tile_id].year == year for tile_id, year, _, _ in features)
        assert max(n for *_, n in features) == 2  # the overlap slump, seen by A and B of one year only
        coverage = dataset.GetLayerByName("slumps_coverage")
        assert sorted((f["tile_id"], f["year"]) for f in coverage) == sorted(
            (tile_id, year) for (year, _), tile_id in run["ids"].items())
        assert coverage.GetSpatialRef().GetAuthorityCode(None) == "3413"


def test_years_are_never_merged_with_group_by_none_they_are(run, tmp_path):
    apart = process_tiles(run["root"], str(tmp_path / "a.gpkg"))
    together = process_tiles(run["root"], str(tmp_path / "t.gpkg"), settings=TileSettings(group_by="none"))
    assert together.features < apart.features and set(together.groups) == {"all"}
    by_date = process_tiles(run["root"], str(tmp_path / "d.gpkg"), settings=TileSettings(group_by="date"))
    assert len(by_date.groups) == 6  # every tile seen on its own day (the mosaic: its year only)


def test_recomputed_with_darts_settings_gives_darts_binarized_tif(run, tmp_path):
    """Inside DARTS' extent, at its threshold, clipped, sizes 4-connected, minimum 32: the
    tiles' binarized rasters are DARTS' own (pixels stored as 50 included)."""
    settings = TileSettings(threshold=0.5, min_object_size=32, boundary="clip", size_connectivity=4)
    with AtomicFiles() as files:
        region = merge_tiles(run["root"], settings=settings, tile_outputs=str(tmp_path / "tiles"), files=files)
    for tile in region.tiles:
        folder = next(path for key, path in run["folders"].items() if run["ids"][key] == tile.tile_id)
        darts = pixels(os.path.join(folder, "binarized.tif"))
        ours = pixels(tmp_path / "tiles" / tile.tile_id / "binarized.tif")
        np.testing.assert_array_equal(ours, darts)


def test_exported_binarized_taken_as_it_is(run, tmp_path):
    settings = TileSettings(binarization="as_exported", threshold=0.95)  # the threshold is not used
    with AtomicFiles() as files:
        region = merge_tiles(run["root"], settings=settings, tile_outputs=str(tmp_path / "tiles"), files=files)
    for tile in region.tiles:
        folder = next(path for key, path in run["folders"].items() if run["ids"][key] == tile.tile_id)
        darts = pixels(os.path.join(folder, "binarized.tif"))
        np.testing.assert_array_equal(pixels(tmp_path / "tiles" / tile.tile_id / "binarized.tif"), darts)
    assert region.features > 0


def test_an_ensemble_member_is_read_where_it_exists(run, tmp_path):
    region = process_tiles(run["root"], str(tmp_path / "m.gpkg"), settings=TileSettings(subset="with_tcvis"))
    assert [tile.tile_id for tile in region.tiles] == sorted(run["ids"][(year, "tile_B")] for year in (2019, 2024))
    assert len(region.skipped) == 4 and all("probabilities-with_tcvis.tif" in item.reason for item in region.skipped)


def test_damaged_json_or_extent_names_the_file_and_skips_the_tile(run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run["root"], root)
    a, b = IDS[2019]["tile_A"][0], IDS[2019]["tile_B"][0]
    (root / a / "darts_inference.json").write_text('{"DARTS_tileid": ')
    extent = root / b / "prediction_extent.gpkg"
    extent.write_bytes(extent.read_bytes()[:2000])
    region = process_tiles(str(root), str(tmp_path / "map.gpkg"))
    reasons = {item.tile_id: item.reason for item in region.skipped}
    assert set(reasons) == {a, b} and len(region.tiles) == 4
    assert "darts_inference.json" in reasons[a] and "prediction_extent.gpkg" in reasons[b]
    with pytest.raises(ValueError, match="darts_inference.json|prediction_extent.gpkg"):
        process_tiles(str(root), str(tmp_path / "stop.gpkg"), stop_on_error=True)
    assert not os.path.exists(tmp_path / "stop.gpkg")


def test_an_extent_in_another_crs_is_reprojected(run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run["folders"][(2019, "tile_A")], root / "tile")
    path = str(root / "tile" / "prediction_extent.gpkg")
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geometries = []
    with open_read_only(path, "vector") as source:
        layer = source.GetLayer(0)
        transform = osr.CoordinateTransformation(layer.GetSpatialRef(), wgs84)
        for feature in layer:
            geometry = feature.GetGeometryRef().Clone()
            geometry.Segmentize(5.0)
            geometry.Transform(transform)
            geometries.append(geometry)
    os.remove(path)
    target = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    out = target.CreateLayer("prediction_extent", wgs84, ogr.wkbPolygon)
    for geometry in geometries:
        feature = ogr.Feature(out.GetLayerDefn())
        feature.SetGeometry(geometry)
        out.CreateFeature(feature)
    target = out = None
    (source,), _ = find_tiles(str(root))
    from darts_postprocessing.core.files.grids import grid_of

    percent = pixels(source.probabilities)
    extent = tile_extent(source, np.where(percent == 255, np.nan, 0.5), grid_of(source.probabilities, "p"))
    np.testing.assert_array_equal(extent, percent != 255)


def test_no_tile_found_says_what_was_looked_at(tmp_path):
    (tmp_path / "_metadata_x").mkdir()
    (tmp_path / "_metadata_x" / "config.toml").write_text("")
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "binarized.tif").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        process_tiles(str(tmp_path), str(tmp_path / "map.gpkg"))
    message = str(error.value)
    assert "_metadata_x: no probabilities.tif (holds config.toml)" in message
    assert "scene: no probabilities.tif (holds binarized.tif)" in message


def test_inference_json_tileid_is_trusted_first(run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run["folders"][(2019, "tile_A")], root / "renamed")
    data = json.loads((root / "renamed" / "darts_inference.json").read_text())
    assert data["DARTS_tileid"] == IDS[2019]["tile_A"][0]
    region = process_tiles(str(root), str(tmp_path / "m.gpkg"))
    assert region.tiles[0].date.date.isoformat() == "2019-07-15" and "darts_inference.json" in region.tiles[0].date.source


def test_worker_processes_give_the_same_per_year_map(run, tmp_path):
    def features(path):
        with open_read_only(path, "vector") as dataset:
            rows = [(name, sorted(f.items().items()), f.GetGeometryRef().ExportToWkb())
                    for name in ("slumps", "slumps_coverage") for f in dataset.GetLayerByName(name)]
        return sorted(rows, key=lambda row: tuple(str(item) for item in row))

    process_tiles(run["root"], str(tmp_path / "one.gpkg"), layer="slumps", workers=1)
    process_tiles(run["root"], str(tmp_path / "two.gpkg"), layer="slumps", workers=2)
    assert features(tmp_path / "one.gpkg") == features(tmp_path / "two.gpkg")


def test_a_tile_holding_a_tile_of_the_same_name_gets_readable_unique_ids(run, tmp_path):
    """#20 item 6: ids are paths below the input folder, never '.', never two alike."""
    outer = tmp_path / "T07WET"
    shutil.copytree(run["folders"][(2019, "tile_A")], outer)
    shutil.copytree(run["folders"][(2024, "tile_A")], outer / "T07WET")
    sources, _ = find_tiles(str(outer))
    assert sorted(source.tile_id for source in sources) == ["T07WET", "T07WET/T07WET"]
    with AtomicFiles() as files:
        region = merge_tiles(str(outer), tile_outputs=str(tmp_path / "tiles"), files=files)
    assert sorted(os.listdir(tmp_path / "tiles")) == ["T07WET"] and len(region.tiles) == 2
