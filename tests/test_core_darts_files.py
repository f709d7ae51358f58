"""What makes the core's files DARTS' own: statistics in DARTS' percent, the tags that say how
a file was made, and GeoParquet written with pyarrow (the venv of current releases has it;
GDAL's osgeo is only in Debian's Python, so each half is checked where it can be)."""

import json
import os
import struct

import numpy as np
import pytest
import reference
from darts_postprocessing.core.files.geoparquet import LayerData, write_table
from darts_postprocessing.core.files.layers import Layout
from darts_postprocessing.core.files.tags import describe_run
from darts_postprocessing.core.kernels.encodings import statistics_values


def test_percent_statistics_values_are_darts_exported_percent():
    percent = np.arange(101, dtype=np.uint8).reshape(1, 101)
    # DARTS' percent input keeps its values: 53 and 59 stay (k / 100 in float32 would give 52, 58).
    np.testing.assert_array_equal(statistics_values(percent, "percent"), percent.astype(np.float32))
    fractions = np.array([[0.289, 0.999, 0.53, np.nan]], np.float32)
    # Float probabilities: int(p * 100) in float32, truncated, as upstream exports them.
    expected = [(np.float32(0.289) * np.float32(100)).astype(np.uint8), 99, (np.float32(0.53) * np.float32(100)).astype(np.uint8)]
    got = statistics_values(fractions, "percent")
    np.testing.assert_array_equal(got[0, :3], np.array(expected, np.float32))
    assert got.dtype == np.float32 and np.isnan(got[0, 3])
    # Fractions from percent: k / 100 as the readers decode them; floats kept as they are.
    np.testing.assert_array_equal(statistics_values(np.array([[53, 255]], np.uint8), "fraction"),
                                  [[np.float32(53) / np.float32(100), np.nan]])
    assert statistics_values(fractions, "fraction") is fractions
    with pytest.raises(ValueError, match="statistics scale"):
        Layout(statistics="percentage")


def test_describe_run_uses_upstreams_keys_and_carries_the_inputs_tags():
    inherited = {"DARTS_tileid": "S2A_T06WVS", "DARTS_modelfiles": "['a.ckpt']", "DARTS_exportdate": "old",
                 "DARTS_binarizethreshold": "0.4", "AREA_OR_POINT": "Area"}
    tags = describe_run("prepareexport", {"THRESHOLD": 0.5, "MIN_OBJECT_SIZE": 32, "MASK_EROSION_SIZE": 10,
                                          "EDGE_EROSION_SIZE": None, "QUALITY_LEVEL": "low_quality",
                                          "BOUNDARY": "remove"}, inherited)
    assert tags["DARTS_tileid"] == "S2A_T06WVS" and tags["DARTS_modelfiles"] == "['a.ckpt']"
    assert tags["DARTS_binarizethreshold"] == "0.5" and tags["DARTS_mmu"] == "32"  # this run's, not the input's
    assert tags["DARTS_maskerosion"] == "10" and tags["DARTS_edgeerosion"] == "None"
    assert tags["DARTS_qualitymask"] == "low_quality"
    assert tags["DARTS_prepareexport_boundary"] == "remove" and "AREA_OR_POINT" not in tags
    assert tags["DARTS_exportdate"] != "old" and tags["DARTS_exportdate"].endswith("+00:00")
    assert all(isinstance(value, str) for value in tags.values())
    assert describe_run("exporttile", {}, inherited, tile_id="folder")["DARTS_tileid"] == "folder"


def polygon_wkb(x0, y0, size):
    ring = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size), (x0, y0)]
    return struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *p) for p in ring)


def test_geoparquet_written_with_pyarrow(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed in this Python")
    crs = {"type": "ProjectedCRS", "name": "WGS 84 / UTM zone 6N", "id": {"authority": "EPSG", "code": 32606}}
    data = LayerData([("Region_ID", "int64", [1, 2]), ("min", "int64", [51, None]), ("mean", "float64", [60.5, None])],
                     [polygon_wkb(0, 0, 10), polygon_wkb(20, 0, 10)], ["Polygon"], crs, [0.0, 0.0, 30.0, 10.0])
    path = tmp_path / "prediction_segments.parquet"
    write_table(str(path), data)
    table = pq.read_table(path)
    assert table.column_names == ["geometry", "Region_ID", "min", "mean"]
    assert str(table.schema.field("Region_ID").type) == "int64" and str(table.schema.field("mean").type) == "double"
    assert table.column("min").to_pylist() == [51, None] and table.column("mean").to_pylist() == [60.5, None]
    assert table.column("geometry").to_pylist() == data.wkb
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["version"] == "1.0.0" and geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column == {"encoding": "WKB", "geometry_types": ["Polygon"], "crs": crs, "bbox": [0.0, 0.0, 30.0, 10.0]}
    # A layer without CRS says so (null), or readers would take it for WGS 84.
    write_table(str(path), LayerData([], [], ["MultiPolygon"], None, None))
    geo = json.loads(pq.read_table(path).schema.metadata[b"geo"])
    assert geo["columns"]["geometry"]["crs"] is None and "bbox" not in geo["columns"]["geometry"]


def test_geoparquet_columns_read_from_the_geopackage(tmp_path):
    pytest.importorskip("osgeo.ogr", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import polygonize
    from darts_postprocessing.core.files.geoparquet import read_layer

    binary = np.zeros((20, 20), np.uint8)
    binary[2:6, 2:6] = binary[6, 6] = 1  # one object of two parts
    binary[10:14, 12:18] = 1
    percent = np.full(binary.shape, 60, np.uint8)
    percent[2, 2] = 53
    path = str(tmp_path / "p.gpkg")
    polygonize(binary, (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0), "EPSG:32606", path, "p", percent,
               layout=Layout(statistics="percent", parts=True, geometry_name="geom"))
    data = read_layer(path, "p")
    names = [name for name, _, _ in data.columns]
    assert names == ["Region_ID", "min", "max", "mean", "median", "std", "npixel", "area_m2"]
    kinds = dict((name, kind) for name, kind, _ in data.columns)
    assert kinds["Region_ID"] == kinds["min"] == kinds["npixel"] == "int64" and kinds["mean"] == "float64"
    columns = {name: values for name, _, values in data.columns}
    assert columns["Region_ID"] == [1, 1, 2] and columns["min"] == [53, 53, 60] and columns["npixel"] == [17, 17, 24]
    assert data.geometry_types == ["Polygon"] and len(data.wkb) == 3 and data.wkb[0][:5] == struct.pack("<BI", 1, 3)
    assert data.crs["id"] == {"authority": "EPSG", "code": 32606}
    assert data.bbox == [600020.0, 7799860.0, 600180.0, 7799980.0]
    _, table = reference.object_table(binary, percent.astype(np.float64))
    assert columns["mean"][0] == pytest.approx(table["mean"][0])


def test_write_metadata_on_finished_geotiff_and_geopackage(tmp_path):
    gdal = pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import polygonize
    from darts_postprocessing.core.files.gdal import open_read_only
    from darts_postprocessing.core.files.geotiff import write_geotiff
    from darts_postprocessing.core.files.tags import read_tags, write_metadata

    transform = (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0)
    binary = np.zeros((8, 8), np.uint8)
    binary[2:5, 2:5] = 1
    tif = str(tmp_path / "b.tif")
    write_geotiff(tif, binary, transform, "EPSG:32606", compress="LZW")
    tags = describe_run("processtiles", {"THRESHOLD": 0.5}, tile_id="T1")
    write_metadata(tif, tags, "Binarized Segmentation")
    with open_read_only(tif) as dataset:
        assert dataset.GetRasterBand(1).GetDescription() == "Binarized Segmentation"
        assert dataset.GetMetadata()["long_name"] == "Binarized Segmentation" and read_tags(tif) == tags
        np.testing.assert_array_equal(dataset.ReadAsArray(), binary)  # pixels untouched
    gpkg = str(tmp_path / "p.gpkg")
    polygonize(binary, transform, "EPSG:32606", gpkg, "a")
    polygonize(binary, transform, "EPSG:32606", str(tmp_path / "q.gpkg"), "b")
    gdal.VectorTranslate(gpkg, str(tmp_path / "q.gpkg"), accessMode="append")  # a second layer "b"
    write_metadata(gpkg, tags, layer="b")  # only that layer: the file's and layer a's metadata stay
    with open_read_only(gpkg) as vector:
        assert vector.GetLayerByName("b").GetMetadata() == tags
        assert "DARTS_tileid" not in (vector.GetLayerByName("a").GetMetadata() or {}) and not vector.GetMetadata()
    write_metadata(gpkg, tags)
    with open_read_only(gpkg) as vector:
        assert vector.GetMetadata() == vector.GetLayerByName("a").GetMetadata() == tags and read_tags(gpkg) == tags


# darts_inference.json as DARTS' pipeline writes it (sequential_v2._result_metadata, then the export date).
DARTS_INFERENCE_KEYS = ["DARTS_tileid", "DARTS_modelfiles", "DARTS_tpiouter", "DARTS_tpiinner", "DARTS_patchsize",
                        "DARTS_overlap", "DARTS_reflection", "DARTS_binarizethreshold", "DARTS_maskerosion",
                        "DARTS_edgeerosion", "DARTS_mmu", "DARTS_qualitymask", "DARTS_exportdate"]


def test_inference_record_has_darts_keys_in_darts_types():
    from darts_postprocessing.core.files.tags import inference_record

    tags = {"DARTS_tileid": "20240715T213529_20240715T213531_T07WET", "DARTS_modelfiles": "['a.ckpt', 'b.ckpt']",
            "DARTS_tpiouter": "100", "DARTS_tpiinner": "0", "DARTS_patchsize": "1024", "DARTS_overlap": "256",
            "DARTS_reflection": "0", "DARTS_binarizethreshold": "0.45", "DARTS_maskerosion": "10",
            "DARTS_edgeerosion": "10", "DARTS_mmu": "32", "DARTS_qualitymask": "1",
            "DARTS_exportdate": "2026-01-02 03:04:05+00:00", "DARTS_prepareexport_boundary": "remove",
            "long_name": "Probabilities"}
    record = inference_record(tags)
    assert list(record) == DARTS_INFERENCE_KEYS + ["DARTS_prepareexport_boundary"]
    assert record["DARTS_modelfiles"] == ["a.ckpt", "b.ckpt"] and record["DARTS_tileid"] == tags["DARTS_tileid"]
    for key in ("DARTS_tpiouter", "DARTS_tpiinner", "DARTS_patchsize", "DARTS_overlap", "DARTS_reflection",
                "DARTS_maskerosion", "DARTS_edgeerosion", "DARTS_mmu", "DARTS_qualitymask"):
        assert type(record[key]) is int and record[key] == int(tags[key]), key
    assert type(record["DARTS_binarizethreshold"]) is float and record["DARTS_binarizethreshold"] == 0.45
    assert record["DARTS_exportdate"] == tags["DARTS_exportdate"]
    # The plugin's own settings and DARTS' quality level names stay text; what no tag says is null.
    record = inference_record({"DARTS_tileid": "T1", "DARTS_qualitymask": "low_quality", "DARTS_edgeerosion": "None",
                               "DARTS_modelfiles": "model.ckpt"})
    assert record["DARTS_qualitymask"] == "low_quality" and record["DARTS_modelfiles"] == ["model.ckpt"]
    assert record["DARTS_edgeerosion"] is None and record["DARTS_patchsize"] is None and record["DARTS_mmu"] is None
    assert record["DARTS_exportdate"].endswith("+00:00") and list(record) == DARTS_INFERENCE_KEYS
    for key, value in (("DARTS_mmu", "many"), ("DARTS_mmu", "3.5"), ("DARTS_binarizethreshold", "half"),
                       ("DARTS_modelfiles", "['a.ckpt', 3]"), ("DARTS_modelfiles", "[unclosed")):
        with pytest.raises(ValueError, match=f"{key}="):
            inference_record({key: value})


def test_thumbnail_outlines_objects_and_the_extent():
    from darts_postprocessing.core.kernels.quicklook import EXTENT_LINE_RGB, OBJECT_RGB, thumbnail_rgb

    percent = np.full((40, 60), 30, np.uint8)
    extent = np.ones(percent.shape, np.uint8)
    extent[:, 50:] = 0  # a strip outside the extent
    binarized = np.zeros(percent.shape, np.uint8)
    binarized[10:20, 10:25] = 1  # an object inside
    binarized[0:5, 30:35] = 1  # one cut by the tile's edge
    percent[binarized == 1] = 90
    doubled = thumbnail_rgb(percent, extent, binarized)
    assert doubled.shape == (3, 80, 120)  # each pixel 2 x 2, so that JPEG's colour subsampling keeps the lines
    rgb = doubled[:, ::2, ::2]
    np.testing.assert_array_equal(doubled, rgb.repeat(2, axis=1).repeat(2, axis=2))
    red = np.all(rgb == np.array(OBJECT_RGB)[:, None, None], axis=0)
    blue = np.all(rgb == np.array(EXTENT_LINE_RGB)[:, None, None], axis=0)
    ring = np.zeros(percent.shape, bool)
    ring[10:20, 10:25] = True
    ring[11:19, 11:24] = False
    ring[0:5, 30:35] = True
    ring[1:4, 31:34] = False  # closed along the tile's edge too
    np.testing.assert_array_equal(red, ring)
    assert (rgb[:, 12, 12] == 229).all()  # inside an object: its probability in grey (90 %)
    expected_line = np.zeros(percent.shape, bool)
    expected_line[:, 49] = True  # the extent's border, not the tile's edge
    np.testing.assert_array_equal(blue, expected_line)
    # Large tiles are sampled as the quicklook: an object of one pixel still shows.
    big = np.zeros((2000, 1000), np.uint8)
    big[1001, 501] = 1
    small = thumbnail_rgb(np.full(big.shape, 10, np.uint8), np.ones(big.shape, np.uint8), big)
    assert small.shape == (3, 1000, 500) and (small[:, 500:502, 250:252] == np.array(OBJECT_RGB)[:, None, None]).all()


def test_export_tile_writes_darts_folder_with_ensemble_subsets(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import export_tile
    from darts_postprocessing.core.files.tags import read_tags
    from darts_postprocessing.core.kernels.quicklook import thumbnail_rgb
    from darts_postprocessing.core.products.export import subset_name, subset_names
    from reading import open_read_only, pixels
    from scipy import ndimage

    rng = np.random.default_rng(3)
    field = ndimage.gaussian_filter(rng.random((120, 150)), 4)
    probabilities = ((field - field.min()) / np.ptp(field)).astype(np.float32)
    extent = np.ones(probabilities.shape, np.uint8)
    extent[:, :8] = 0
    binarized = ((probabilities > 0.8) & (extent == 1)).astype(np.uint8)
    member = (probabilities * np.float32(0.9)).astype(np.float32)
    tile = {"probabilities": probabilities, "binarized_segmentation": binarized, "extent": extent,
            "probabilities-with_tcvis": member, "binarized_segmentation-with_tcvis": (member > 0.7) & (extent == 1)}
    tags = {"DARTS_tileid": "T07WET", "DARTS_mmu": "4", "DARTS_exportdate": "2026-01-02 03:04:05+00:00"}
    folder = tmp_path / "T07WET"
    written = export_tile(tile, str(folder), (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0), "EPSG:32606", tags=tags,
                          ensemble_subsets=["with_tcvis"])
    names = {"probabilities.tif", "binarized.tif", "extent.tif", "prediction_segments.gpkg", "prediction_extent.gpkg",
             "thumbnail.jpg", "darts_inference.json", "quicklook.png", "probabilities-with_tcvis.tif",
             "binarized-with_tcvis.tif", "prediction_segments-with_tcvis.gpkg"}
    parquet = {"prediction_segments.parquet", "prediction_extent.parquet", "prediction_segments-with_tcvis.parquet"}
    on_disk = set(os.listdir(folder))
    assert on_disk in (names, names | parquet)
    assert {os.path.basename(path) for path in written.values()} == on_disk
    record = json.loads((folder / "darts_inference.json").read_text())
    assert list(record) == DARTS_INFERENCE_KEYS and record["DARTS_mmu"] == 4 and record["DARTS_tileid"] == "T07WET"
    assert record["DARTS_exportdate"] == tags["DARTS_exportdate"] and record["DARTS_modelfiles"] is None
    member_percent = pixels(folder / "probabilities-with_tcvis.tif")
    expected = (member * np.float32(100)).astype(np.uint8)
    expected[extent == 0] = 255
    np.testing.assert_array_equal(member_percent, expected)
    np.testing.assert_array_equal(pixels(folder / "binarized-with_tcvis.tif"), tile["binarized_segmentation-with_tcvis"])
    with open_read_only(folder / "prediction_segments-with_tcvis.gpkg", "vector") as segments:
        layer = segments.GetLayer(0)
        assert layer.GetName() == "prediction_segments-with_tcvis" and layer.GetFeatureCount()
    for name in on_disk - {"darts_inference.json"}:
        assert tags.items() <= read_tags(str(folder / name)).items(), name
    # The JPEG holds the thumbnail (within JPEG's loss).
    jpeg = pixels(folder / "thumbnail.jpg").astype(int)
    percent = (probabilities * np.float32(100)).astype(np.uint8)
    percent[extent == 0] = 255
    assert np.abs(jpeg - thumbnail_rgb(percent, extent, binarized)).mean() < 6
    # Subset names: DARTS' file name gives the subset; one name twice, or a name no file can hold, is refused.
    assert subset_name("probabilities-with_tcvis") == "with_tcvis" and subset_name("model a.v2") == "model_a_v2"
    assert subset_names(["probabilities-m", "m", "m"]) == ["m", "m_", "m__"]
    for subsets, message in ((["a-b"], "letters, digits and _"), (["m", "m"], "given twice")):
        with pytest.raises(ValueError, match=message):
            export_tile(tile, str(tmp_path / "refused"), (0, 1, 0, 0, 0, -1), None, ensemble_subsets=subsets)
    with pytest.raises(KeyError, match="probabilities-other"):
        export_tile(tile, str(tmp_path / "refused"), (0, 1, 0, 0, 0, -1), None, ensemble_subsets=["other"])
    assert not (tmp_path / "refused").exists()


# -- export_tile: probabilities outside the extent are nodata ----------------------------------

def test_export_tile_writes_nodata_outside_the_extent(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import export_tile
    from darts_postprocessing.core.files.gdal import open_read_only

    probs = np.full((20, 30), 0.42, np.float32)
    probs[0, 0] = np.nan
    extent = np.ones(probs.shape, np.uint8)
    extent[:, :10] = 0  # a band outside the extent, with valid probabilities under it
    extent[15:, 20:] = 0
    binarized = np.zeros(probs.shape, bool)
    binarized[5:8, 12:15] = True
    tile = {"probabilities": probs, "binarized_segmentation": binarized, "extent": extent}
    paths = export_tile(tile, str(tmp_path / "tile"), (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0), 32606)
    with open_read_only(paths["probabilities"]) as dataset:
        band = dataset.GetRasterBand(1)
        written = band.ReadAsArray()
        assert band.GetNoDataValue() == 255
    np.testing.assert_array_equal(written[extent == 0], 255)
    np.testing.assert_array_equal(written[extent == 1], 42)
    # The input tile is left as it was.
    assert np.isnan(probs[0, 0]) and (probs[extent == 0][1:] == np.float32(0.42)).all()


def test_export_tile_uint8_percent_gets_nodata_outside_the_extent(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import export_tile
    from darts_postprocessing.core.files.gdal import open_read_only

    percent = np.full((10, 10), 70, np.uint8)
    extent = np.zeros(percent.shape, np.uint8)
    extent[2:8, 2:8] = 1
    tile = {"probabilities": percent, "binarized_segmentation": np.zeros(percent.shape, bool), "extent": extent}
    paths = export_tile(tile, str(tmp_path / "tile"), (0.0, 1.0, 0.0, 10.0, 0.0, -1.0), 32606)
    with open_read_only(paths["probabilities"]) as dataset:
        written = dataset.GetRasterBand(1).ReadAsArray()
    np.testing.assert_array_equal(written, np.where(extent == 1, 70, 255))
    assert (percent == 70).all()


@pytest.mark.parametrize("dtype, nodata", [(np.uint8, None), (np.uint8, 0), (np.uint8, 1), (np.uint8, 255),
                                           (np.int16, -1), (np.float32, float("nan"))])
def test_a_binary_raster_decodes_to_its_ones_without_nodata(dtype, nodata):
    """decode_binary, whether it keeps the bytes (uint8 0/1) or compares them: the 1s that are
    not nodata; anything but 0, 1 and nodata is refused."""
    from darts_postprocessing.core.kernels.encodings import decode_binary

    data = (np.random.default_rng(2).random((37, 53)) < 0.4).astype(dtype)
    if nodata is not None and not np.isnan(nodata) and nodata not in (0, 1):
        data[::7, ::5] = nodata
    elif nodata is not None and np.isnan(nodata):
        data[::7, ::5] = np.nan
    expected = (data == 1) & ~((data == nodata) if nodata is not None else False)
    np.testing.assert_array_equal(decode_binary(data.copy(), nodata, "x"), expected)
    odd = data.copy()
    odd[3, 4] = 2
    with pytest.raises(ValueError, match="other than 0 and 1"):
        decode_binary(odd, nodata, "x")
