"""Polygons and DARTS tile folders written by the core (needs GDAL's osgeo): polygons
burnt back onto the grid must give the objects again, attributes equal numpy's."""

import os

import numpy as np
import pytest
import reference
from darts_postprocessing.core import export_tile, polygonize, prepare_export, to_percent
from reading import open_read_only, pixels
from tiles import random_tile
from vectors import features
import math
from darts_postprocessing.core import object_areas

gdal = pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
ogr = pytest.importorskip("osgeo.ogr")
gdal.UseExceptions()

GEOTRANSFORM = (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0)
EPSG = 32606


def burn(path, shape, geotransform=GEOTRANSFORM):
    """The GeoPackage rasterized onto the grid, Region_ID as value (pixel centres inside)."""
    target = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Int32)
    target.SetGeoTransform(geotransform)
    with open_read_only(path, "vector") as source:
        gdal.RasterizeLayer(target, [1], source.GetLayer(0), options=["ATTRIBUTE=Region_ID"])
    return target.GetRasterBand(1).ReadAsArray()


@pytest.mark.parametrize("seed", range(8))
def test_polygons_burn_back_to_the_objects_with_numpy_statistics(tmp_path, seed):
    probs, _ = random_tile(seed)
    binary = np.nan_to_num(probs) > 0.45
    labels, expected = reference.object_table(binary, probs)
    path = tmp_path / "objects.gpkg"
    count = polygonize(binary, GEOTRANSFORM, EPSG, str(path), probabilities=probs)
    name, rows = features(path)
    assert name == "objects" and count == len(rows) == labels.max()
    np.testing.assert_array_equal(burn(path, binary.shape), labels)
    for index, (attributes, geometry) in enumerate(rows):
        assert geometry.IsValid() and geometry.GetGeometryName() == "MULTIPOLYGON"
        assert attributes["Region_ID"] == index + 1
        assert attributes["npixel"] == expected["npixel"][index]
        assert attributes["area_m2"] == pytest.approx(geometry.GetArea()) == expected["npixel"][index] * 100
        for statistic in ("min", "max", "mean", "median", "std"):
            assert attributes[statistic] == pytest.approx(expected[statistic][index], rel=1e-9), statistic


def test_holes_and_diagonal_contacts(tmp_path):
    binary = np.zeros((12, 12), np.uint8)
    binary[1:6, 1:6] = 1
    binary[3, 3] = 0                      # a hole
    binary[6, 6] = binary[7, 7] = 1       # diagonal chain from the square's corner
    binary[9, 1] = binary[10, 2] = binary[9, 3] = binary[10, 4] = 1  # zigzag: one object, four pieces
    path = tmp_path / "shapes.gpkg"
    polygonize(binary, GEOTRANSFORM, EPSG, str(path))
    _, rows = features(path)
    assert [attributes["npixel"] for attributes, _ in rows] == [26, 4]
    square, zigzag = rows[0][1], rows[1][1]
    assert square.GetGeometryCount() == 3  # the square (with its hole) and two single pixels
    assert sorted(square.GetGeometryRef(i).GetGeometryCount() for i in range(3)) == [1, 1, 2]  # one ring + hole
    assert square.GetArea() == 26 * 100 and square.IsValid()
    assert zigzag.GetGeometryCount() == 4 and zigzag.IsValid()
    assert set(rows[0][0]) == {"Region_ID", "npixel", "area_m2"}  # no probabilities, no statistics
    np.testing.assert_array_equal(burn(path, binary.shape) > 0, binary == 1)


def test_geographic_crs_area_in_square_metres(tmp_path):
    binary = np.ones((2, 3), bool)
    path = tmp_path / "geo.gpkg"
    polygonize(binary, (10.0, 0.1, 0, 70.0, 0, -0.1), 4326, str(path))
    (attributes, _), = features(path)[1]
    radius = 6371007.181
    expected = radius ** 2 * np.radians(0.3) * (np.sin(np.radians(70.0)) - np.sin(np.radians(69.8)))
    assert attributes["area_m2"] == pytest.approx(expected, rel=1e-9)


def test_empty_raster_gives_an_empty_layer_and_cancel_leaves_nothing(tmp_path):
    assert polygonize(np.zeros((5, 5), bool), GEOTRANSFORM, EPSG, str(tmp_path / "none.gpkg")) == 0
    assert features(tmp_path / "none.gpkg")[1] == []

    def cancel(fraction, message):
        if fraction >= 0.3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        polygonize(np.ones((50, 50), bool), GEOTRANSFORM, EPSG, str(tmp_path / "x.gpkg"), progress=cancel)
    assert sorted(os.listdir(tmp_path)) == ["none.gpkg"]


def test_to_percent_truncates_like_upstream():
    p = np.array([0.0, 0.019, 0.5, 0.999, 1.0, np.nan], np.float32)
    np.testing.assert_array_equal(to_percent(p), [0, 1, 50, 99, 100, 255])
    assert to_percent(np.array([7, 255], np.uint8)).tolist() == [7, 255]
    random = np.random.default_rng(0).random(10000).astype(np.float32)
    np.testing.assert_array_equal(to_percent(random), (random * np.float32(100)).astype(np.uint8))
    with pytest.raises(ValueError):
        to_percent(np.array([1.5], np.float32))


def test_export_tile_writes_darts_files(tmp_path):
    probs, quality = random_tile(2, shape=(120, 140))
    result = prepare_export({"probabilities": probs, "quality_data_mask": quality}, quality_level=1,
                            mask_erosion_size=2, min_object_size=4, device="cpu")
    paths = export_tile(result, str(tmp_path / "T06WVS"), GEOTRANSFORM, f"EPSG:{EPSG}")
    from darts_postprocessing.core.files.geoparquet import geoparquet_support

    twins = ["prediction_segments.parquet", "prediction_extent.parquet"] if geoparquet_support()[0] else []
    assert sorted(os.listdir(tmp_path / "T06WVS")) == sorted(
        ["probabilities.tif", "binarized.tif", "extent.tif", "prediction_segments.gpkg", "prediction_extent.gpkg",
         "quicklook.png", "thumbnail.jpg", "darts_inference.json", *twins])
    masked = result["probabilities"]
    expected = np.where(np.isnan(masked), 255, (np.nan_to_num(masked) * np.float32(100)).astype(np.uint8))
    with open_read_only(paths["probabilities"]) as dataset:
        band = dataset.GetRasterBand(1)
        assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
        assert dataset.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "LZW"
        assert dataset.GetGeoTransform() == GEOTRANSFORM and "32606" in dataset.GetSpatialRef().GetAuthorityCode(None)
        np.testing.assert_array_equal(band.ReadAsArray(), expected)
    binarized = pixels(paths["binarized"])
    np.testing.assert_array_equal(binarized, result["binarized_segmentation"])
    np.testing.assert_array_equal(pixels(paths["extent"]), result["extent"])
    # Statistics as DARTS computes them: of the exported uint8 percent values.
    percent = np.where(expected == 255, np.nan, expected).astype(np.float64)
    for kind, raster in (("segments", binarized), ("extent_polygons", result["extent"])):
        name, rows = features(paths[kind])
        labels, table = reference.object_table(raster, percent)
        assert name == {"segments": "prediction_segments", "extent_polygons": "prediction_extent"}[kind]
        assert len(rows) == labels.max() > 0
        for index, (attributes, _) in enumerate(rows):
            assert attributes["npixel"] == table["npixel"][index]
            assert attributes["min"] == table["min"][index] and attributes["max"] == table["max"][index]
            assert isinstance(attributes["min"], int) and 0 <= attributes["min"] <= attributes["max"] <= 100
            for statistic in ("mean", "median", "std"):
                assert attributes[statistic] == pytest.approx(table[statistic][index], rel=1e-9, abs=1e-9)
        with open_read_only(paths[kind], "vector") as dataset:  # must outlive its layer
            layer = dataset.GetLayer(0)
            definition = layer.GetLayerDefn()
            types = {definition.GetFieldDefn(i).GetName(): definition.GetFieldDefn(i).GetTypeName()
                     for i in range(definition.GetFieldCount())}
            assert types == {"Region_ID": "Integer64", "min": "Integer64", "max": "Integer64", "mean": "Real",
                             "median": "Real", "std": "Real", "npixel": "Integer64", "area_m2": "Real"}
            assert layer.GetGeometryColumn() == "geom" and layer.GetMetadata()["DARTS_tileid"] == "T06WVS"
    with open_read_only(paths["quicklook"]) as png:
        assert png.RasterCount == 3 and max(png.RasterXSize, png.RasterYSize) <= 512
        assert png.GetMetadata()["DARTS_tileid"] == "T06WVS"
    # Band descriptions (upstream's long_name) and tags: the folder's name is the tile id.
    for kind, long_name in (("probabilities", "Probabilities"), ("binarized", "Binarized Segmentation"),
                            ("extent", "Extent of the segmentation")):
        with open_read_only(paths[kind]) as raster:
            assert raster.GetRasterBand(1).GetDescription() == raster.GetMetadata()["long_name"] == long_name
            assert raster.GetMetadata()["DARTS_tileid"] == "T06WVS" and "DARTS_exportdate" in raster.GetMetadata()


def test_export_tile_failure_writes_nothing(tmp_path):
    probs, quality = random_tile(1, shape=(40, 40))
    result = prepare_export({"probabilities": probs, "quality_data_mask": quality}, device="cpu")
    folder = tmp_path / "tile"
    folder.mkdir()
    (folder / "binarized.tif").write_bytes(b"an input")
    with pytest.raises(ValueError, match="also an input"):
        export_tile(result, str(folder), GEOTRANSFORM, EPSG, inputs=[str(folder / "binarized.tif")])
    assert os.listdir(folder) == ["binarized.tif"] and (folder / "binarized.tif").read_bytes() == b"an input"

    def fail_late(fraction, message):
        if fraction > 0.9:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        export_tile(result, str(folder), GEOTRANSFORM, EPSG, progress=fail_late)
    assert os.listdir(folder) == ["binarized.tif"]


# -- areas on rotated and sheared grids --------------------------------------------------------

@pytest.mark.parametrize("degrees", [30.0, 45.0, 90.0])
def test_areas_on_a_rotated_grid_are_the_pixel_area(degrees):
    """A 10 m grid rotated by any angle still has 100 m² pixels: the area is |det| of the
    geotransform's 2x2 part, not dx * dy alone (which ignores the rotation terms)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    geotransform = (500000.0, 10 * cos, 10 * sin, 7000000.0, 10 * sin, -10 * cos)
    binary = np.zeros((6, 8), np.uint8)
    binary[1, 1:4] = 1  # 3 pixels
    binary[4:6, 5:7] = 1  # 4 pixels
    np.testing.assert_allclose(object_areas(binary, geotransform), [300.0, 400.0], rtol=1e-9)


def test_areas_on_a_sheared_grid():
    # Columns 10 m apart along x, rows 5 m apart along y but shifted 3 m in x per row:
    # parallelogram pixels of 10 * 5 = 50 m² (shear does not change the area).
    geotransform = (0.0, 10.0, 3.0, 0.0, 0.0, -5.0)
    binary = np.ones((2, 3), np.uint8)
    np.testing.assert_allclose(object_areas(binary, geotransform), [300.0])
    # A genuinely rotated-and-scaled grid: x' = 2x - 1y, y' = 1x + 3y -> |det| = 7.
    np.testing.assert_allclose(object_areas(np.ones((1, 1), np.uint8), (0.0, 2.0, -1.0, 0.0, 1.0, 3.0)), [7.0])


def traced_both_ways(binary, geotransform):
    """{label: WKB} from tracing the whole label raster and from tracing window by window."""
    from darts_postprocessing.core.files.layers import trace, trace_objects
    from darts_postprocessing.core.kernels.objects import Objects

    objects = Objects(binary)
    whole = trace(objects.label_image(), geotransform, None)
    windows = trace_objects(objects, geotransform, None)
    return ({label: bytes(geometry.ExportToWkb()) for label, geometry in whole.items()},
            {label: bytes(geometry.ExportToWkb()) for label, geometry in windows.items()}, objects)


@pytest.mark.parametrize("seed", range(12))
def test_tracing_window_by_window_gives_the_bytes_of_the_whole_raster(seed):
    """trace_objects (each group of objects traced in its own window, with its own origin) and
    trace over the whole label raster: the same pieces, rings, vertex order and coordinates,
    on this GDAL (Debian 12: 3.6; 13: 3.10), for sparse, dense, edge-touching and nested
    objects; a window holds no pixel of another window's objects."""
    rng = np.random.default_rng(seed)
    height, width = rng.integers(20, 200, 2)
    density = [0.002, 0.02, 0.2, 0.5][seed % 4]
    binary = rng.random((height, width)) < density
    binary = binary | np.roll(binary, 1, 0) | np.roll(binary, 1, 1)  # bigger blobs
    binary[0, rng.integers(width)] = binary[-1, rng.integers(width)] = binary[rng.integers(height), 0] = True
    if seed % 3 == 0:  # a ring with an object in its hole and one diagonal to it
        binary[5:15, 5:15] = True
        binary[7:13, 7:13] = False
        binary[9:11, 9:11] = True
        binary[15, 15] = True
    whole, windows, objects = traced_both_ways(binary, GEOTRANSFORM)
    assert whole == windows and len(whole) == objects.count
    label_image = objects.label_image(np.int32)
    windows = objects.window_images(np.int32)
    covered = np.zeros(binary.shape, int)
    for (row0, row1, col0, col1), painted in windows:
        assert np.array_equal(painted, label_image[row0:row1, col0:col1])
        covered[row0:row1, col0:col1] += 1
    assert covered.max() <= 1 and (covered[binary] == 1).all()  # apart, and every object pixel in one
    assert objects.window_images(max_windows=0) is None or not windows


def test_tracing_on_an_inexact_grid_traces_the_whole_raster():
    """A grid whose coordinates are not exact in doubles (0.1 m pixels) is traced in one pass
    (a window's origin would round differently); exact grids go window by window."""
    from darts_postprocessing.core.files.layers import exact_grid

    assert exact_grid(GEOTRANSFORM, (10980, 10980)) and exact_grid((500000.0, 3.0, 0, 7e6, 0, -3.0), (9000, 9000))
    assert not exact_grid((600000.1, 0.1, 0, 7e6, 0, -0.1), (100, 100))
    assert not exact_grid((600000.0, 10.0, 0.5, 7e6, 0.5, -10.0), (100, 100))
    binary = np.random.default_rng(3).random((60, 70)) < 0.05
    whole, windows, _ = traced_both_ways(binary, (600000.1, 0.1, 0.0, 7800000.3, 0.0, -0.1))
    assert whole == windows


@pytest.mark.parametrize("seed", range(16))
def test_tracing_a_collapsed_raster_gives_the_bytes_of_the_whole_raster(seed, monkeypatch):
    """trace_collapsed (equal rows, then equal columns, kept once; the outlines' row and column
    numbers put back) and trace over the raster as it is: the same WKB on this GDAL, for
    extents with holes, edge bands, diagonal steps and several labels, on grids with either
    sign; rasters with mostly distinct rows are traced as they are."""
    from darts_postprocessing.core.files.gdal import spatial_reference
    from darts_postprocessing.core.files import layers
    from darts_postprocessing.core.files.layers import trace, trace_collapsed

    traced_shapes = []
    monkeypatch.setattr(layers, "trace", lambda labels, *args: traced_shapes.append(labels.shape) or trace(labels, *args))
    rng = np.random.default_rng(seed)
    height, width = rng.integers(8 if seed % 4 != 3 else 1, 120, 2)
    labels = np.ones((height, width), np.uint8)
    edge = int(rng.integers(0, 4))
    if edge:
        labels[:edge] = labels[-edge:] = labels[:, :edge] = labels[:, -edge:] = 0
    for _ in range(int(rng.integers(0, 6))):  # holes, some touching, with islands
        row, col = rng.integers(0, max(height - 3, 1)), rng.integers(0, max(width - 3, 1))
        labels[row:row + rng.integers(1, 30), col:col + rng.integers(1, 30)] = int(rng.integers(0, 3))
    if seed % 4 == 3:  # mostly distinct rows: traced as it is
        labels = (rng.random((height, width)) < 0.5).astype(np.uint8)
    if seed % 5 == 4:  # a diagonal staircase
        labels = np.triu(np.ones((height, width), np.uint8), k=int(rng.integers(-5, 5)))
    signs = [(10.0, -10.0), (10.0, 10.0), (-2.5, -0.5), (3.0, -3.0)][seed % 4]
    transform = (600000.0, signs[0], 0.0, 7800000.0, 0.0, signs[1])
    srs = spatial_reference("EPSG:32607")
    whole, collapsed = trace(labels, transform, srs), trace_collapsed(labels, transform, srs)
    assert (traced_shapes[0][0] < height) == (seed % 4 != 3 and seed % 5 != 4)  # not where rows mostly differ
    assert sorted(whole) == sorted(collapsed)
    assert all(bytes(whole[label].ExportToWkb()) == bytes(collapsed[label].ExportToWkb()) for label in whole)
