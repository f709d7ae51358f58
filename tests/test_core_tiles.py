"""core/tiles.py: many overlapping tiles in two UTM zones to one merged map, on real files.

The region (scripts/sample_region.py) has slumps in tile overlaps, one cut by a tile's edge and whole
in the neighbour, one under a cloud in one tile and whole in another, an empty tile; the
expected map is known slump by slump."""

import itertools
import os
import random
import shutil
import sys

import numpy as np
import pytest

osgeo = pytest.importorskip("osgeo")
from osgeo import ogr  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import sample_region as scene  # noqa: E402
from darts_postprocessing.core import prepare_export  # noqa: E402
from darts_postprocessing.core.files.atomic import AtomicFiles  # noqa: E402
from darts_postprocessing.core.kernels.objects import Objects  # noqa: E402
from darts_postprocessing.core.regions.merge import merge_objects  # noqa: E402
from darts_postprocessing.core.regions.process_tiles import (  # noqa: E402
    TilesOutputs, merge_tiles, process_tiles, process_tiles_files)
from darts_postprocessing.core.regions.tiles import TileResult, TileSettings, find_tiles, process_tile  # noqa: E402
from reading import open_read_only, pixels  # noqa: E402
from reading import tags as dataset_tags  # noqa: E402
from vectors import features  # noqa: E402

ogr.UseExceptions()
# slump -> (tile it must come from, n_tiles)
EXPECTED = {"overlap": ("tile_A", 2), "a_edge": ("tile_B", 1), "a_only": ("tile_A", 1), "b_cloud": ("tile_A", 1),
            "bc_overlap": ("tile_B", 2), "c_only": ("tile_C", 1)}


def read_map(path):
    with open_read_only(path, "vector") as dataset:
        layer = dataset.GetLayer(0)
        rows = [(feature.items(), feature.GetGeometryRef().Clone()) for feature in layer]
        return rows, layer.GetSpatialRef().GetAuthorityCode(None), layer.GetMetadata()


def slump_of(slumps, geometry):
    """The name of the one slump whose centre lies in `geometry`."""
    names = [name for name, (x, y, _) in slumps.items() if geometry.Contains(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))]
    assert len(names) == 1, names
    return names[0]


def assert_no_overlaps(rows):
    for (_, a), (_, b) in itertools.combinations(rows, 2):
        assert not a.Intersects(b) or a.Intersection(b).GetArea() < 1e-6


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("region")
    return {**scene.region(str(folder / "tiles")), "folder": folder, "inputs": str(folder / "tiles")}


def test_the_region_becomes_one_map_slump_by_slump(region, tmp_path):
    result = process_tiles(region["inputs"], str(tmp_path / "map.gpkg"))
    rows, epsg, metadata = read_map(str(tmp_path / "map.gpkg"))
    assert epsg == "3413" and len(rows) == result.features == 6
    found = {}
    for attributes, geometry in rows:
        name = slump_of(region["slumps"], geometry)
        found[name] = (attributes["tile_id"], attributes["n_tiles"])
        assert geometry.IsValid()
        assert attributes["area_m2"] == attributes["npixel"] * 100.0  # in the tile's own 10 m grid
        radius = region["slumps"][name][2]
        assert attributes["npixel"] * 100 == pytest.approx(np.pi * radius ** 2, rel=0.15)  # the whole disc
        assert attributes["mean"] == pytest.approx(0.9)
    assert found == EXPECTED
    assert_no_overlaps(rows)
    assert result.duplicates == 2 and {t.tile_id: t.kept for t in result.tiles} == {"tile_A": 3, "tile_B": 2,
                                                                                      "tile_C": 1, "tile_D": 0}
    assert metadata["DARTS_binarizethreshold"] == "0.5" and metadata["DARTS_processtiles_tiles"] == "4"


def test_the_pipeline_on_files_says_each_line_once_and_writes_into_a_geopackage(region, tmp_path):
    """process_tiles_files (processtiles' algorithm and command line): the map as a layer of an
    existing GeoPackage (its other layers kept) with its coverage beside it, the report, and the
    group and summary lines said once through `log` (and kept in the result)."""
    existing = tmp_path / "project.gpkg"
    process_tiles(region["inputs"], str(existing), layer="other")
    said = []
    result = process_tiles_files(region["inputs"], TilesOutputs(str(existing), "slumps", report=str(tmp_path / "r.html")),
                                 log=lambda sentence, warning: said.append((sentence, warning)))
    with open_read_only(existing, "vector") as dataset:
        assert sorted(dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())) == [
            "other", "other_coverage", "slumps", "slumps_coverage"]
        assert dataset.GetLayerByName("slumps").GetFeatureCount() == result.features == 6
    summaries = [sentence for sentence, warning in said if sentence.startswith("4 tiles processed, 0 skipped: 6 ")]
    assert len(summaries) == 1 and not said[-1][1] and said[-1][0] == summaries[0]
    assert any(sentence.startswith("year ") and " tiles, " in sentence for sentence, _ in said)
    assert result.notes == [sentence for sentence, warning in said if not warning]
    assert result.warnings == [sentence for sentence, warning in said if warning]
    assert "DARTS tiles to one map" in (tmp_path / "r.html").read_text()
    assert sorted(os.listdir(tmp_path)) == ["project.gpkg", "r.html"]


def test_each_tile_is_postprocessed_exactly_as_prepare_export(region, tmp_path):
    with AtomicFiles() as files:
        result = merge_tiles(region["inputs"], tile_outputs=str(tmp_path / "tiles"), files=files)
    for tile in result.tiles:
        folder = os.path.join(region["inputs"], tile.tile_id)
        percent = pixels(os.path.join(folder, "probabilities.tif"))
        quality = pixels(os.path.join(folder, "quality_data_mask.tif"))
        expected = prepare_export({"probabilities": np.where(percent == 255, np.nan, percent / np.float32(100)),
                                   "quality_data_mask": quality}, 0.5, 10, 32, "low_quality",
                                  probability_scale="percent")
        written = tmp_path / "tiles" / tile.tile_id
        binarized = pixels(written / "binarized.tif")
        np.testing.assert_array_equal(binarized, expected["binarized_segmentation"])
        np.testing.assert_array_equal(pixels(written / "extent.tif"), expected["extent"])
        assert tile.count == Objects(binarized).count == len(features(written / "prediction_segments.gpkg")[1])
    assert sorted(os.listdir(tmp_path / "tiles")) == ["tile_A", "tile_B", "tile_C", "tile_D"]


def test_exported_tiles_with_only_an_extent(tmp_path):
    slumps = scene.region(str(tmp_path / "tiles"), mask="extent")["slumps"]
    with AtomicFiles() as files:
        result = merge_tiles(str(tmp_path / "tiles"), tile_outputs=str(tmp_path / "out"), files=files)
        result.write(files.reserve(str(tmp_path / "map.gpkg")), "map")
    rows, _, _ = read_map(str(tmp_path / "map.gpkg"))
    found = {slump_of(slumps, geometry): (a["tile_id"], a["n_tiles"]) for a, geometry in rows}
    assert found == EXPECTED
    assert_no_overlaps(rows)
    for tile in ("tile_A", "tile_B"):  # the extent as it is: not eroded a second time, and its tags say so
        given = pixels(tmp_path / "tiles" / tile / "extent.tif")
        np.testing.assert_array_equal(pixels(tmp_path / "out" / tile / "extent.tif"), given)
        tags = dataset_tags(tmp_path / "out" / tile / "extent.tif")
        assert (tags["DARTS_maskerosion"], tags["DARTS_qualitymask"], tags["DARTS_tileid"]) == (
            "0", "extent.tif as given", tile)


def test_exclusion_polygons_and_percent_statistics(region, tmp_path):
    """Water polygons (EPSG:4326) over two slumps remove them in every tile that sees them;
    percent statistics are DARTS' (integer min/max of the uint8 values)."""
    slumps = region["slumps"]
    water = scene.exclusion_polygons(str(tmp_path / "water.gpkg"), [slumps["a_only"][:2], slumps["overlap"][:2]])
    result = process_tiles(region["inputs"], str(tmp_path / "map.gpkg"),
                           settings=TileSettings(exclude=(water, None, None), statistics="percent"))
    rows, _, metadata = read_map(str(tmp_path / "map.gpkg"))
    found = {slump_of(slumps, geometry) for _, geometry in rows}
    assert found == set(EXPECTED) - {"a_only", "overlap"}
    assert {t.tile_id: t.counts.get("removed_excluded") for t in result.tiles} == {"tile_A": 2, "tile_B": 1,
                                                                                   "tile_C": 0, "tile_D": 0}
    assert all(a["min"] == a["max"] == 90 and isinstance(a["min"], int) and a["mean"] == 90.0 for a, _ in rows)
    assert metadata["DARTS_processtiles_exclusion_mask"] == water
    with pytest.raises(ValueError, match="must be polygons"):
        process_tiles(region["inputs"], str(tmp_path / "x.gpkg"), settings=TileSettings(
            exclude=(os.path.join(region["inputs"], "tile_A", "quality_data_mask.tif"),
                     None, None)))


def test_two_workers_and_a_dask_cluster_give_the_same_map(region, tmp_path):
    distributed = pytest.importorskip("distributed")
    process_tiles(region["inputs"], str(tmp_path / "one.gpkg"), workers=1)
    process_tiles(region["inputs"], str(tmp_path / "two.gpkg"), workers=2)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        process_tiles(region["inputs"], str(tmp_path / "dask.gpkg"), client=client)
    maps = [read_map(str(tmp_path / f"{name}.gpkg"))[0] for name in ("one", "two", "dask")]
    wkb = [[(a, g.ExportToWkb()) for a, g in rows] for rows in maps]
    assert wkb[0] == wkb[1] == wkb[2] and len(wkb[0]) == 6


def test_a_broken_or_inconsistent_tile_is_skipped_and_named(region, tmp_path):
    from osgeo import gdal

    inputs = tmp_path / "tiles"
    shutil.copytree(region["inputs"], inputs)
    broken = inputs / "tile_E"
    broken.mkdir()
    data = open(inputs / "tile_D" / "probabilities.tif", "rb").read()
    (broken / "probabilities.tif").write_bytes(data[: len(data) // 3])
    shutil.copy(inputs / "tile_D" / "quality_data_mask.tif", broken)
    odd = inputs / "nested" / "tile_F"  # a mask on another grid
    odd.mkdir(parents=True)
    shutil.copy(inputs / "tile_A" / "probabilities.tif", odd)
    shutil.copy(inputs / "tile_D" / "quality_data_mask.tif", odd)
    lonely = inputs / "tile_G"
    lonely.mkdir()
    shutil.copy(inputs / "tile_D" / "probabilities.tif", lonely)
    nowhere = inputs / "tile_H"  # no CRS: cannot be placed on the map
    nowhere.mkdir()
    for name in ("probabilities.tif", "quality_data_mask.tif"):
        with open_read_only(inputs / "tile_D" / name) as source:
            copy = gdal.GetDriverByName("GTiff").Create(str(nowhere / name), source.RasterXSize, source.RasterYSize,
                                                        1, gdal.GDT_Byte)
            copy.SetGeoTransform(source.GetGeoTransform())
            copy.GetRasterBand(1).WriteArray(source.ReadAsArray())
            copy = None

    result = process_tiles(str(inputs), str(tmp_path / "map.gpkg"), workers=2)
    reasons = {item.tile_id: item.reason for item in result.skipped}
    assert set(reasons) == {"tile_E", "tile_F", "tile_H"}  # tile_G: probabilities alone, its valid pixels the extent
    assert "tile_H/probabilities.tif has no CRS" in reasons["tile_H"]
    assert "tile_E/probabilities.tif" in reasons["tile_E"] and ("damaged" in reasons["tile_E"]
                                                                or "cannot open" in reasons["tile_E"])
    assert "not on the same grid" in reasons["tile_F"]
    assert len(result.tiles) == 5 and [tile.extent_as_given for tile in result.tiles if tile.tile_id == "tile_G"] == [
        "valid pixels of probabilities.tif (no extent in the folder)"]
    shutil.rmtree(nowhere)
    for stop_at in ("tile_E",):  # unreadable
        with pytest.raises(ValueError, match=stop_at):
            process_tiles(str(inputs), str(tmp_path / "stopped.gpkg"), stop_on_error=True)
        assert not os.path.exists(tmp_path / "stopped.gpkg")
        shutil.rmtree(inputs / stop_at)


def test_no_tiles_and_bad_settings_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no tile found"):
        process_tiles(str(tmp_path / "empty"), str(tmp_path / "map.gpkg"))
    with pytest.raises(ValueError, match="threshold"):
        process_tiles(str(tmp_path / "empty"), str(tmp_path / "map.gpkg"), settings=TileSettings(threshold=1.5))
    with pytest.raises(ValueError, match="projected"):
        process_tiles(str(tmp_path / "empty"), str(tmp_path / "map.gpkg"), "EPSG:4326")


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_leaves_nothing(region, tmp_path, workers):
    calls = []

    def progress(fraction, message):
        calls.append(message)
        if message.startswith("Tile "):
            raise KeyboardInterrupt  # the caller's cancel
    with pytest.raises(KeyboardInterrupt):
        with AtomicFiles() as files:
            merge_tiles(region["inputs"], tile_outputs=str(tmp_path / "tiles"), workers=workers, files=files,
                        progress=progress)
    leftovers = [os.path.join(folder, name) for folder, _, names in os.walk(tmp_path) for name in names]
    assert leftovers == []


def square(x0, y0, side, height=None):
    top = y0 + (side if height is None else height)
    return ogr.CreateGeometryFromWkt(f"MULTIPOLYGON ((({x0} {y0}, {x0 + side} {y0}, {x0 + side} {top}, "
                                     f"{x0} {top}, {x0} {y0})))")


def tile_of(tile_id, squares, depths):
    geometries = [square(*s) for s in squares]  # (x0, y0, side[, height])
    return TileResult(tile_id, counts={"objects": len(squares), "removed_at_boundary": 0, "removed_too_small": 0},
                      fields={"Region_ID": np.arange(1, len(squares) + 1),
                              "npixel": np.array([g.GetArea() / 100 for g in geometries])},  # 10 m pixels
                      geometries=[bytes(g.ExportToWkb()) for g in geometries], depths=np.asarray(depths, float),
                      envelopes=np.array([g.GetEnvelope() for g in geometries]))


def test_merge_rule_duplicates_slivers_and_order():
    def run(order):
        tiles = [tile_of("A", [(0, 0, 100), (500, 0, 100), (1000, 0, 100)], [50, 10, 30]),
                 tile_of("B", [(40, 0, 100), (505, 0, 100), (1090, 0, 100)], [20, 40, 40])]
        kept, duplicates, clipped = merge_objects([tiles[i] for i in order])
        return [(k.result.tile_id, k.index, sorted(k.tiles), round(k.ogr().GetArea(), 6)) for k in kept], \
            duplicates, clipped

    kept, duplicates, clipped = run([0, 1])
    # A1 (depth 50) beats B1 (60% overlap: same slump); B2 (depth 40) beats A2 (95%); B3 (depth 40)
    # and A3 overlap by 10%: two slumps, A3 loses the sliver.
    assert kept == [("A", 0, ["A", "B"], 10000), ("B", 1, ["A", "B"], 10000), ("B", 2, ["B"], 10000),
                    ("A", 2, ["A"], 9000)]
    assert (duplicates, clipped) == (2, 1)
    assert run([1, 0]) == (kept, duplicates, clipped)  # whatever order the tiles finished in


def test_a_slump_joined_to_its_neighbour_in_one_tile_is_not_lost():
    """Tile A sees slump W whole but joined to its neighbour X (one object Z, near A's edge);
    tile B sees X alone, deeper, and W not at all (cut by B's edge, removed). Z is not a
    duplicate of X (X is a fifth of it): X's part is cut off Z, and W stays."""
    a = tile_of("A", [(0, 0, 500, 100)], [10])  # Z: X (0..100) and W (100..500)
    b = tile_of("B", [(0, 0, 100)], [50])  # X
    kept, duplicates, clipped = merge_objects([a, b], min_object_size=32)
    assert [(k.result.tile_id, sorted(k.tiles), round(k.ogr().GetArea())) for k in kept] == [("B", ["B"], 10000),
                                                                                                ("A", ["A"], 40000)]
    assert (duplicates, clipped) == (0, 1)
    # what is left after the cut must still be an object: a remainder under the minimum size is not
    kept, duplicates, _ = merge_objects([tile_of("A", [(0, 0, 105, 100)], [10]), tile_of("B", [(0, 0, 100)], [50])],
                                        min_object_size=32)
    assert [(k.result.tile_id, sorted(k.tiles)) for k in kept] == [("B", ["A", "B"])] and duplicates == 1


def test_depth_is_zero_for_cut_objects_and_scaled_to_metres():
    from darts_postprocessing.core.regions.tiles import object_depths, pixel_size_m
    from osgeo import osr

    extent = np.ones((40, 40), np.uint8)
    extent[:, 30:] = 0  # invalid data east
    binary = np.zeros((40, 40), bool)
    binary[10:14, 10:14] = True  # deep inside: in block 2 of the rows and columns, 3 blocks from the edges
    binary[20:24, 26:30] = True  # touches the invalid area (clip would keep it cut)
    binary[36:40, 14:18] = True  # touches the raster's south edge
    depths = object_depths(Objects(binary), extent)
    assert depths.tolist() == [12.0, 0.0, 0.0]
    utm, geographic = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32607)
    geographic.ImportFromEPSG(4326)
    angle = np.radians(30)  # a 10 m pixel on a rotated grid is still 10 m
    rotated = (0, 10 * np.cos(angle), -10 * np.sin(angle), 0, -10 * np.sin(angle), -10 * np.cos(angle))
    assert pixel_size_m(rotated, utm, 100) == pytest.approx(10)
    # 0.0003 x 0.0001 degrees at 60 N: 16.7 x 11.1 m, the side of a square of that area
    assert pixel_size_m((0, 0.0003, 0, 60.0001 * 2 - 60, 0, -0.0001), geographic, 2) == pytest.approx(
        np.sqrt(0.0003 * 111320 * 0.5 * 0.0001 * 111320), rel=1e-3)


def test_blocks_inside_is_every_pixel_of_the_block_non_zero():
    """The word-wise reading of 0/1 bytes and the comparison of other rasters give what
    `all()` over each whole block gives, for any shape, block, dtype and memory layout."""
    from darts_postprocessing.core.regions.tiles import blocks_inside

    def every_pixel(extent, block):
        height, width = extent.shape
        rows, cols = -(-height // block), -(-width // block)
        padded = np.zeros((rows * block, cols * block), bool)  # beyond the raster: outside
        padded[:height, :width] = extent != 0
        return padded.reshape(rows, block, cols, block).all(axis=(1, 3))

    rng = np.random.default_rng(7)
    for case in range(300):
        height, width = (int(n) for n in rng.integers(1, 50, 2))
        block = int(rng.choice([1, 2, 3, 4, 5, 8, 16]))
        holes = rng.random((height, width)) < rng.choice([0.002, 0.05, 0.5])
        extent = [~holes, (~holes).astype(np.uint8), (~holes * rng.integers(1, 4, holes.shape)).astype(np.uint8),
                  (~holes).astype(np.int16)][case % 4]
        if case % 5 == 0:
            extent = extent[::-1, 1:]
        if case % 7 == 0:
            extent = np.asfortranarray(extent)
        assert np.array_equal(blocks_inside(extent, block), every_pixel(extent, block)), (case, extent.shape, block)


def test_a_killed_worker_does_not_lose_the_other_tiles(region, tmp_path):
    psutil = pytest.importorskip("psutil")
    killed = []

    def progress(fraction, message):
        if not killed and message.startswith("Tile "):  # a worker dies (e.g. out of memory) after the first tile
            workers = psutil.Process().children(recursive=True)
            python = [child for child in workers if "python" in child.name().lower()]
            if python:
                python[-1].kill()
                killed.append(python[-1].pid)
    result = process_tiles(region["inputs"], str(tmp_path / "map.gpkg"), workers=2, progress=progress,
                           tile_outputs=str(tmp_path / "tiles"))  # a tile run again finds its first attempt's files
    assert killed and len(result.tiles) == 4 and result.skipped == [] and result.features == 6
    assert sorted(os.listdir(tmp_path / "tiles")) == ["tile_A", "tile_B", "tile_C", "tile_D"]


def test_tile_outputs_never_replace_a_tile_file(tmp_path):
    scene.region(str(tmp_path / "tiles"), mask="extent")
    before = (tmp_path / "tiles" / "tile_A" / "extent.tif").read_bytes()
    with pytest.raises(ValueError, match="also an input"):
        with AtomicFiles() as files:
            merge_tiles(str(tmp_path / "tiles"), tile_outputs=str(tmp_path / "tiles"), files=files)
    assert (tmp_path / "tiles" / "tile_A" / "extent.tif").read_bytes() == before


def test_merge_never_leaves_overlaps_on_random_layouts():
    generator = random.Random(5)
    for _ in range(20):
        tiles = [tile_of(name, [(generator.uniform(0, 500), generator.uniform(0, 500), generator.uniform(20, 120))
                                for _ in range(15)], [generator.uniform(0, 100) for _ in range(15)])
                 for name in "ABC"]
        for tile in tiles:  # one tile's objects never overlap each other: keep a disjoint subset
            keep = []
            for index in range(tile.count):
                geometry = ogr.CreateGeometryFromWkb(tile.geometries[index])
                if all(not geometry.Intersects(ogr.CreateGeometryFromWkb(tile.geometries[k])) for k in keep):
                    keep.append(index)
            tile.geometries = [tile.geometries[k] for k in keep]
            tile.depths, tile.envelopes = tile.depths[keep], tile.envelopes[keep]
            tile.fields = {"Region_ID": np.arange(1, len(keep) + 1), "npixel": tile.fields["npixel"][keep]}
        kept, duplicates, _ = merge_objects(tiles)
        assert_no_overlaps([(None, item.ogr()) for item in kept])
        assert len(kept) + duplicates <= sum(tile.count for tile in tiles)
        assert sum(len(item.tiles) for item in kept) >= len(kept)


def test_tile_ids_are_unique(tmp_path):
    for parent in ("north", "south"):
        scene.draw_tile(scene.TileSpec("same", 32608, 500000, 7700000, 40), [], str(tmp_path / parent))
    sources, skipped = find_tiles(str(tmp_path))
    assert [s.tile_id for s in sources] == ["north/same", "south/same"]
    assert skipped == []
    # a folder given twice, and a link to a tile folder: each tile once
    (tmp_path / "links").mkdir()
    os.symlink(tmp_path / "north" / "same", tmp_path / "links" / "linked")
    sources, _ = find_tiles([str(tmp_path / "north"), str(tmp_path / "north" / "same"), str(tmp_path / "links")])
    assert [s.tile_id for s in sources] == ["same"]
    scene.draw_tile(scene.TileSpec("other", 32608, 500000, 7700000, 40), [], str(tmp_path / "elsewhere"))
    os.symlink(tmp_path / "elsewhere" / "other", tmp_path / "links" / "other_link")
    assert [s.tile_id for s in find_tiles(str(tmp_path / "links"))[0]] == ["linked", "other_link"]


# -- the merge under hostile shapes (issue 20) ----------------------------------------------
CLIP_ALL = TileSettings(boundary="clip", mask_erosion_size=0, min_object_size=1)


def reference_merge(results, min_object_size):
    """The merge rule of core/tiles.py done the slow, plain way: every kept object compared
    whole with each candidate (GEOS overlays of whole geometries, no index, no pieces)."""
    candidates = sorted(((-r.depths[i], r.tile_id, i, r) for r in results for i in range(r.count)),
                        key=lambda item: item[:3])
    kept, duplicates, clipped = [], 0, 0  # [tile_id, index, geometry, tiles]
    for _, tile_id, index, result in candidates:
        geometry = ogr.CreateGeometryFromWkb(result.geometries[index])
        area = geometry.GetArea()
        overlapping = []
        for other in kept:
            overlap = geometry.Intersection(other[2])
            overlap = sum(overlap.GetGeometryRef(k).GetArea() for k in range(overlap.GetGeometryCount())) \
                if ogr.GT_Flatten(overlap.GetGeometryType()) in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection) \
                else overlap.GetArea() if ogr.GT_Flatten(overlap.GetGeometryType()) == ogr.wkbPolygon else 0
            if overlap > 0:
                overlapping.append((overlap, other))
        if overlapping:
            largest, same = max(overlapping, key=lambda item: item[0])
            rest = geometry
            for _, other in overlapping:
                rest = rest.Difference(other[2])
            if largest >= 0.5 * area or rest.IsEmpty() or \
                    result.fields["npixel"][index] * rest.GetArea() / area < max(min_object_size, 1):
                same[3].add(tile_id)
                duplicates += 1
                continue
            geometry, clipped = rest, clipped + 1
        kept.append([tile_id, index, geometry, {tile_id}])
    return kept, duplicates, clipped


def assert_same_merge(results, min_object_size):
    """merge_objects gives the reference's map: the same objects from the same tiles, the same
    n_tiles, and the same geometries (to rounding: pieces are cut and joined again)."""
    expected, duplicates, clipped = reference_merge(results, min_object_size)
    for result in results:
        result.kept = 0
    kept, *counts = merge_objects(results, min_object_size)
    assert counts == [duplicates, clipped]
    assert [(k.result.tile_id, k.index, sorted(k.tiles)) for k in kept] == [(t, i, sorted(s)) for t, i, _, s in expected]
    for item, (_, _, geometry, _) in zip(kept, expected):
        assert item.ogr().GetArea() == pytest.approx(geometry.GetArea(), rel=1e-9)
        assert item.ogr().SymDifference(geometry).GetArea() < 1e-6 * geometry.GetArea()
    assert_no_overlaps([(None, item.ogr()) for item in kept])
    return kept


def test_a_speckled_merge_is_the_reference_rule(tmp_path):
    """Checkerboard probabilities where tiles A and B overlap: with boundary clip and no
    erosion each tile sees one object of hundreds of diagonal parts there (compared in pieces,
    not whole: GEOS' Intersects on such objects never ended at full-tile size)."""
    scene.speckled_region(str(tmp_path), radius=300.0)
    sources, _ = find_tiles(str(tmp_path))
    results = [process_tile(source, CLIP_ALL, "EPSG:3413") for source in sources]
    assert all(result.error is None for result in results)
    parts = max(ogr.CreateGeometryFromWkb(w).GetGeometryCount() for r in results for w in r.geometries)
    assert parts > 500  # far more than an object compared whole may have
    kept = assert_same_merge(results, 1)
    assert any(k.tiles == {"tile_A", "tile_B"} for k in kept)  # the speckle, seen by both


def test_objects_with_many_vertices_are_cut_into_pieces_and_joined_again():
    """A polygon with a thousand holes (more vertices than a piece may have) against a
    speckle of squares and a plain square, in both orders of depth: the same map as the
    reference, the cut polygon joined again into one."""
    holes = ", ".join(f"(({x} {y}, {x + 4} {y}, {x + 4} {y + 4}, {x} {y + 4}, {x} {y}))"[1:-1]
                      for x in range(2, 390, 12) for y in range(2, 390, 12))
    holed = ogr.CreateGeometryFromWkt(f"MULTIPOLYGON (((0 0, 400 0, 400 400, 0 400, 0 0), {holes}))")
    speckle = ogr.CreateGeometryFromWkt("MULTIPOLYGON (" + ", ".join(
        f"(({x} {y}, {x + 7} {y}, {x + 7} {y + 7}, {x} {y + 7}, {x} {y}))"
        for x in range(150, 650, 14) for y in range(150, 650, 14)) + ")")
    plain = ogr.CreateGeometryFromWkt("MULTIPOLYGON (((380 -50, 700 -50, 700 120, 380 120, 380 -50)))")
    for depths in ([50, 10, 10], [10, 50, 30]):
        tiles = []
        for name, geometries, depth in (("A", [holed], [depths[0]]), ("B", [speckle], [depths[1]]),
                                        ("C", [plain], [depths[2]])):
            tiles.append(TileResult(name, fields={"Region_ID": np.arange(1, 2),
                                                  "npixel": np.array([g.GetArea() for g in geometries])},
                                    geometries=[bytes(g.ExportToWkb()) for g in geometries],
                                    depths=np.asarray(depth, float),
                                    envelopes=np.array([g.GetEnvelope() for g in geometries])))
        kept = assert_same_merge(tiles, 1)
        assert any(k.result.tile_id == "A" and k.geometry is not None for k in kept)
    assert sum(1 for k in kept if k.result.tile_id == "A") == 1


def test_the_merge_reports_progress_and_can_be_canceled(tmp_path):
    scene.speckled_region(str(tmp_path), radius=300.0)
    sources, _ = find_tiles(str(tmp_path))
    results = [process_tile(source, CLIP_ALL, "EPSG:3413") for source in sources]
    seen = []

    def cancel(fraction, message):
        seen.append((fraction, message))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        merge_objects(results, 1, progress=cancel)
    assert seen and seen[0][0] < 1 and "Merging" in seen[0][1]


def test_workers_are_capped_at_tiles_cores_and_memory(region):
    """Issue 20: WORKERS=99999 on 300 tiles started 301 processes (~10 GB, 56 s instead of 3.4 s)."""
    from darts_postprocessing.core.kernels.threads import usable_cores
    from darts_postprocessing.core.regions.workers import worker_count

    sources, _ = find_tiles(region["inputs"])
    count, note = worker_count(99999, sources)
    assert count == min(len(sources), usable_cores()) and note.startswith("WORKERS=99999 lowered to")
    assert "4 tiles" in note and f"{usable_cores()} usable cores" in note
    assert worker_count(1, sources) == (1, None)
    need = 300 * 300 * 16  # the largest tile's processing
    count, note = worker_count(2, sources, available=int(need * 1.5))
    if usable_cores() >= 2:
        assert count == 1 and "GB are available" in note
    assert worker_count(2, sources, available=need * 10)[0] == min(2, usable_cores())
