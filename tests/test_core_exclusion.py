"""Exclusion masks from files (core/exclusion.py): polygons in any CRS burnt onto a tile's grid
with GDAL, rasters on the grid, block by block as in memory; and the mask's effect in
prepare_export on real files."""

import numpy as np
import pytest

osgeo = pytest.importorskip("osgeo")
from darts_postprocessing.core import binarize, prepare_export  # noqa: E402
from darts_postprocessing.core.files.exclusion import exclusion_mask  # noqa: E402
from darts_postprocessing.core.files.geotiff import write_geotiff  # noqa: E402
from darts_postprocessing.core.lazy.blockwise import exclusion_mask_lazy  # noqa: E402
from osgeo import gdal, ogr, osr  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()
UTM = "EPSG:32606"
GEOTRANSFORM = (500000.0, 10.0, 0.0, 7000000.0, 0.0, -10.0)
SHAPE = (60, 80)


def srs_of(code):
    srs = osr.SpatialReference()
    srs.SetFromUserInput(code)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def rectangle(rows, cols):
    """A UTM polygon covering the pixels rows x cols of the test grid exactly (pixel edges)."""
    x0, y0 = GEOTRANSFORM[0] + cols[0] * 10, GEOTRANSFORM[3] - rows[0] * 10
    x1, y1 = GEOTRANSFORM[0] + cols[1] * 10, GEOTRANSFORM[3] - rows[1] * 10
    return ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")


def write_layers(path, layers, crs=UTM):
    """A GeoPackage with {layer name: [(kind, geometry in UTM), ...]}, stored in `crs` (None: no CRS)."""
    target = srs_of(crs) if crs else None
    transform = osr.CoordinateTransformation(srs_of(UTM), target) if crs and crs != UTM else None
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    for name, features in layers.items():
        geometry_type = features[0][1].GetGeometryType() if features else ogr.wkbPolygon
        layer = dataset.CreateLayer(name, target, geometry_type)
        layer.CreateField(ogr.FieldDefn("kind", ogr.OFTString))
        for kind, geometry in features:
            geometry = geometry.Clone()
            if transform:
                geometry.Segmentize(1.0)  # straight in UTM, (nearly) straight after reprojection
                geometry.Transform(transform)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("kind", kind)
            feature.SetGeometry(geometry)
            layer.CreateFeature(feature)
    dataset = None
    return str(path)


def expected_mask(*blocks):
    mask = np.zeros(SHAPE, bool)
    for rows, cols in blocks:
        mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


@pytest.mark.parametrize("crs", [UTM, "EPSG:4326", "EPSG:3413"])
def test_polygons_in_any_crs_land_on_the_pixels_they_cover(tmp_path, crs):
    path = write_layers(tmp_path / "water.gpkg", {"water": [("lake", rectangle((10, 30), (5, 25))),
                                                             ("river", rectangle((40, 43), (0, 80)))]}, crs)
    got = exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, expected_mask(((10, 30), (5, 25)), ((40, 43), (0, 80))))


def test_a_layer_is_chosen_by_name_and_features_by_where(tmp_path):
    path = write_layers(tmp_path / "masks.gpkg", {"water": [("lake", rectangle((10, 30), (5, 25))),
                                                            ("river", rectangle((40, 43), (0, 80)))],
                                                  "glaciers": [("ice", rectangle((0, 5), (60, 80)))]})
    with pytest.raises(ValueError, match=r"has 2 layers \(water, glaciers\): name one"):
        exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM)
    np.testing.assert_array_equal(exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM, layer="glaciers"),
                                  expected_mask(((0, 5), (60, 80))))
    np.testing.assert_array_equal(exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM, layer="water", where="kind = 'lake'"),
                                  expected_mask(((10, 30), (5, 25))))
    with pytest.raises(ValueError, match="no layer 'roads'"):
        exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM, layer="roads")
    with pytest.raises(ValueError, match="no_such_field"):
        exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM, layer="water", where="no_such_field = 1")


def test_what_cannot_be_a_mask_is_one_clear_error(tmp_path):
    line = ogr.CreateGeometryFromWkt("LINESTRING (500000 6999900, 500500 6999900)")
    lines = write_layers(tmp_path / "lines.gpkg", {"roads": [("road", line)]})
    with pytest.raises(ValueError, match="line.*must be polygons"):
        exclusion_mask(lines, SHAPE, GEOTRANSFORM, UTM)
    with pytest.raises(ValueError, match="CRS but the probabilities raster has none"):
        exclusion_mask(write_layers(tmp_path / "w.gpkg", {"w": [("x", rectangle((0, 2), (0, 2)))]}), SHAPE,
                       GEOTRANSFORM, None)
    # A polygon over the grid reaching latitude 95: an error, never a silently smaller mask.
    bad = write_layers(tmp_path / "bad.gpkg", {"w": [("x", ogr.CreateGeometryFromWkt(
        "POLYGON ((-148 62, -146 62, -146 95, -148 95, -148 62))"))]}, crs=None)
    dataset = gdal.OpenEx(bad, gdal.OF_VECTOR | gdal.OF_UPDATE)
    dataset.ExecuteSQL("UPDATE gpkg_geometry_columns SET srs_id = 4326")
    dataset = None
    with pytest.raises(ValueError, match="cannot reproject feature 1"):
        exclusion_mask(bad, SHAPE, GEOTRANSFORM, UTM)


def test_a_layer_without_crs_is_taken_in_the_grids(tmp_path):
    path = write_layers(tmp_path / "w.gpkg", {"w": [("x", rectangle((3, 9), (4, 7)))]}, crs=None)
    np.testing.assert_array_equal(exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM), expected_mask(((3, 9), (4, 7))))


def test_a_raster_mask_on_the_grid_and_off_it(tmp_path):
    data = np.zeros(SHAPE, np.float32)
    data[5:10, 5:10] = 1
    data[20:22, :] = 3  # any non-zero value excludes
    data[30, 30] = np.nan
    data[40, 40] = -9  # nodata
    path = str(tmp_path / "mask.tif")
    write_geotiff(path, data, GEOTRANSFORM, UTM, nodata=-9)
    expected = (data != 0) & ~np.isnan(data) & (data != -9)
    np.testing.assert_array_equal(exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM), expected)
    shifted = (GEOTRANSFORM[0] + 10,) + GEOTRANSFORM[1:]
    with pytest.raises(ValueError, match="not on the probabilities' grid: extent differs.*Warp it"):
        exclusion_mask(path, SHAPE, shifted, UTM)
    with pytest.raises(ValueError, match="CRS differs"):
        exclusion_mask(path, SHAPE, GEOTRANSFORM, "EPSG:32607")


@pytest.mark.parametrize("kind", ["vector", "raster"])
def test_block_by_block_gives_the_same_mask(tmp_path, kind):
    da = pytest.importorskip("dask.array")
    shape = (700, 600)
    geotransform = (500000.0, 10.0, 0.0, 7000000.0, 0.0, -10.0)
    rng = np.random.default_rng(3)
    if kind == "vector":  # many odd polygons in another CRS, crossing the blocks
        rings = []
        for _ in range(40):
            x, y = 500000 + rng.uniform(0, 6000), 7000000 - rng.uniform(0, 7000)
            angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
            radii = rng.uniform(20, 600, 7)
            points = [(x + r * np.cos(a), y + r * np.sin(a)) for a, r in zip(angles, radii)]
            rings.append(("x", ogr.CreateGeometryFromWkt(
                "POLYGON ((" + ", ".join(f"{px} {py}" for px, py in points + points[:1]) + "))")))
        source = write_layers(tmp_path / "polygons.gpkg", {"water": rings}, "EPSG:4326")
    else:
        source = str(tmp_path / "mask.tif")
        write_geotiff(source, (rng.random(shape) > 0.7).astype(np.uint8), geotransform, UTM)
    expected = exclusion_mask(source, shape, geotransform, UTM)
    assert 0 < expected.sum() < expected.size
    lazy = exclusion_mask_lazy(source, shape, geotransform, UTM, 256, str(tmp_path / "burnt.tif"))
    assert isinstance(lazy, da.Array) and lazy.chunks[0][0] == 256
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_prepare_export_with_a_water_mask_from_a_file(tmp_path):
    """The whole chain on files: a lake polygon in EPSG:4326 removes the objects it meets
    (or, clipped, their excluded part) and nothing else."""
    probs = np.zeros(SHAPE, np.float32)
    probs[12:18, 10:20] = 0.9  # half in the lake (rows 10..29, columns 5..24 burnt): partly excluded
    probs[12:18, 30:40] = 0.9  # dry land
    probs[45:50, 50:60] = 0.9  # dry land
    path = write_layers(tmp_path / "lake.gpkg", {"lake": [("lake", rectangle((10, 30), (5, 15)))]}, "EPSG:4326")
    exclude = exclusion_mask(path, SHAPE, GEOTRANSFORM, UTM)
    tile = {"probabilities": probs, "quality_data_mask": np.full(SHAPE, 2, np.uint8)}
    for boundary, kept in (("remove", 60 + 50), ("clip", 30 + 60 + 50)):
        counts = {}
        out = prepare_export(tile, 0.5, 0, 10, 0, device="cpu", boundary=boundary, exclude=exclude, object_counts=counts)
        assert out["binarized_segmentation"].sum() == kept
        assert counts["binarized_segmentation"]["removed_excluded"] == (1 if boundary == "remove" else 0)


def lat_lon_box(path, west, south, east, north):
    """A GeoPackage holding one 4-vertex polygon in EPSG:4326 (what a user draws in lat/lon)."""
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("box", srs_of("EPSG:4326"), ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(
        f"POLYGON (({west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}))"))
    layer.CreateFeature(feature)
    dataset = None
    return str(path)


def test_a_lat_lon_box_covers_what_it_covers_on_the_map(tmp_path):
    """Issue 20: polygons were reprojected vertex by vertex, so a box over 60-90°N (or the
    whole world) became a few far-away points joined by straight lines: it excluded nothing.
    Now its edges are followed: every pixel whose centre lies in the box in lat/lon counts."""
    info = {}
    for box in ((-180, 60, 180, 90), (-180, -90, 180, 90)):
        mask = exclusion_mask(lat_lon_box(tmp_path / f"{box[1]}.gpkg", *box), SHAPE, GEOTRANSFORM, UTM, info=info)
        assert mask.all() and info["overlaps"]
    # a box whose northern edge (a parallel: curved in UTM) crosses the grid, to the pixel
    rows, cols = np.mgrid[:SHAPE[0], :SHAPE[1]]
    centres = np.column_stack([GEOTRANSFORM[0] + (cols.ravel() + 0.5) * 10, GEOTRANSFORM[3] - (rows.ravel() + 0.5) * 10])
    lon_lat = np.array(osr.CoordinateTransformation(srs_of(UTM), srs_of("EPSG:4326")).TransformPoints(
        centres.tolist()))[:, :2]
    north = float(np.median(lon_lat[:, 1]))
    expected = ((lon_lat[:, 1] < north) & (lon_lat[:, 0] > -150) & (lon_lat[:, 0] < -100)).reshape(SHAPE)
    mask = exclusion_mask(lat_lon_box(tmp_path / "part.gpkg", -150, 50, -100, north), SHAPE, GEOTRANSFORM, UTM)
    assert 0 < expected.mean() < 1
    np.testing.assert_array_equal(mask, expected)


def test_polygons_over_a_tile_that_cover_no_pixel_centre_are_told(tmp_path):
    """A polygon that overlaps the grid in its own CRS but holds no pixel centre (here 1 m
    wide) excludes nothing: `info` says it overlaps, so the caller can warn."""
    x, y = GEOTRANSFORM[0] + 100, GEOTRANSFORM[3] - 100  # a pixel corner: no centre within 1 m
    tiny = ogr.CreateGeometryFromWkt(f"POLYGON (({x} {y}, {x + 1} {y}, {x + 1} {y - 1}, {x} {y - 1}, {x} {y}))")
    info = {}
    assert not exclusion_mask(write_layers(tmp_path / "tiny.gpkg", {"w": [("x", tiny)]}, crs="EPSG:4326"), SHAPE,
                              GEOTRANSFORM, UTM, info=info).any()
    assert info["overlaps"]
    far = rectangle((-500, -400), (-500, -400))
    assert not exclusion_mask(write_layers(tmp_path / "far.gpkg", {"w": [("x", far)]}), SHAPE, GEOTRANSFORM, UTM,
                              info=info).any()
    assert not info["overlaps"]


# -- exclusion by share (#18 item 5) ------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("share", [0.0, 0.2, 0.5, 0.9])
def test_exclusion_by_share_in_memory_and_on_dask_equals_the_reference(seed, share):
    """An object is removed when more than `share` of its pixels are excluded (0: any pixel);
    counted as removed_excluded; the same on dask chunks."""
    import dask.array as da
    import reference
    from tiles import random_exclusion, random_tile

    shape = (90, 110)
    probs, quality = random_tile(seed, shape)
    exclude = random_exclusion(seed, shape)
    options = dict(mask_erosion_size=2, min_object_size=[1, 8][seed % 2], quality_level=1, exclude=exclude,
                   max_excluded_share=share)
    counts = {}
    tile = {"probabilities": probs, "quality_data_mask": quality}
    out = prepare_export(tile, 0.4, device="cpu", object_counts=counts, **options)
    extent, expected, _ = reference.prepare_export(probs, quality, 0.4, 2, options["min_object_size"], 1,
                                                   exclude=exclude, max_share=share)
    np.testing.assert_array_equal(out["binarized_segmentation"], expected)
    assert counts["binarized_segmentation"] == reference.object_counts(
        probs, 0.4, options["min_object_size"], extent, 8, exclude, "remove", share)
    lazy_counts = {}
    lazy = prepare_export({name: da.from_array(array, chunks=(31, 47)) for name, array in tile.items()}, 0.4,
                          object_counts=lazy_counts, **{**options, "exclude": da.from_array(exclude, chunks=(31, 47))})
    np.testing.assert_array_equal(lazy["binarized_segmentation"].compute(), expected)
    import dask

    assert dask.compute(lazy_counts["binarized_segmentation"])[0] == counts["binarized_segmentation"]


def test_exclusion_share_hand_made_and_checked():
    probs = np.zeros((6, 12), np.float32)
    probs[1:5, 1:6] = 0.9  # 20 pixels, 4 of them excluded: 20 %
    probs[1:5, 7:11] = 0.9  # 16 pixels, 4 excluded: 25 %
    exclude = np.zeros(probs.shape, np.uint8)
    exclude[1, 1:5] = 1
    exclude[1, 7:11] = 1
    mask = np.ones(probs.shape, np.uint8)
    kept = binarize(probs, 0.5, 1, mask, "cpu", exclude=exclude, max_excluded_share=0.2)
    assert kept[1:5, 1:6].all() and not kept[:, 7:].any()  # exactly 20 % stays ("more than" removes)
    assert not binarize(probs, 0.5, 1, mask, "cpu", exclude=exclude).any()  # 0: any excluded pixel
    for bad in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match="max_excluded_share"):
            binarize(probs, 0.5, 1, mask, "cpu", exclude=exclude, max_excluded_share=bad)
    with pytest.raises(ValueError, match="boundary 'remove'"):
        binarize(probs, 0.5, 1, mask, "cpu", exclude=exclude, boundary="clip", max_excluded_share=0.2)
