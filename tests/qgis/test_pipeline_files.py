"""darts:prepareexport through processing.run against the core's prepare_export_files run
without QGIS on the same inputs: the same files, byte for byte in their pixels, with the same
tags (but the export date) and the same GeoPackage features, in memory and block by block."""

import os

import pytest
from files_digest import folder_digest
from qgis import processing
from sample_tile import write_sample_tile

pytest.importorskip("dask")

CASES = {
    "defaults": (dict(), dict()),
    "thresholds": (dict(THRESHOLDS="0.4,0.6", MASK_EROSION_SIZE=3), dict(thresholds=(0.4, 0.6), mask_erosion_size=3)),
    "clip_percent": (dict(BOUNDARY="clip", SIZE_CONNECTIVITY="4", STATISTICS_SCALE="percent", EDGE_EROSION_SIZE=0,
                          MIN_OBJECT_SIZE=20),
                     dict(boundary="clip", size_connectivity=4, statistics="percent", edge_erosion_size=0,
                          min_object_size=20)),
    "exclusion_subset": (dict(MAX_EXCLUDED_SHARE=0.2, QUALITY_LEVEL="high_quality"),
                         dict(max_excluded_share=0.2, quality_level="high_quality")),
}


def water(folder, reference):
    """A rectangle of exclusion polygons over part of the tile (its CRS)."""
    from osgeo import gdal, ogr

    dataset = gdal.Open(reference)
    transform, srs = dataset.GetGeoTransform(), dataset.GetSpatialRef()
    path = str(folder / "water.gpkg")
    vector = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = vector.CreateLayer("water", srs, ogr.wkbPolygon)
    x0, y0 = transform[0] + 100 * transform[1], transform[3] + 100 * transform[5]
    x1, y1 = x0 + 60 * transform[1], y0 + 80 * transform[5]
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
    layer.CreateFeature(feature)
    vector = dataset = None
    return path


@pytest.mark.parametrize("blocks", [False, True], ids=["in_memory", "blocks"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_prepareexport_writes_what_the_core_pipeline_writes(provider, tmp_path, case, blocks):
    from darts_postprocessing.core.products.prepare_export_files import (
        PrepareExportInputs,
        PrepareExportOutputs,
        PrepareExportSettings,
        prepare_export_files,
    )

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=300, seed=3)
    member, _ = write_sample_tile(str(tmp_path / "member"), size=300, seed=4)
    parameters, fields = CASES[case]
    subsets, exclude = {}, None
    if case == "exclusion_subset":
        subsets, exclude = {"probabilities": member}, water(tmp_path, probabilities)
        parameters = dict(parameters, SUBSET_PROBABILITIES=[member], EXCLUDE=exclude)
        fields = dict(fields, exclude=(exclude, None, None))
    limit = {"MEMORY_LIMIT": 1} if blocks else {}
    plugin, core = tmp_path / "plugin", tmp_path / "core"
    processing.run("darts:prepareexport", {
        "PROBABILITIES": probabilities, "QUALITY_MASK": quality, **parameters, **limit,
        "OUTPUT_BINARIZED": str(plugin / "binarized.tif"), "OUTPUT_EXTENT": str(plugin / "extent.tif"),
        "OUTPUT_PROBABILITIES": str(plugin / "probabilities.tif"), "OUTPUT_POLYGONS": str(plugin / "polygons.gpkg")})
    summary = prepare_export_files(
        PrepareExportInputs(probabilities, quality, subsets),
        PrepareExportOutputs(str(core / "binarized.tif"), str(core / "extent.tif"), str(core / "probabilities.tif"),
                             str(core / "polygons.gpkg")),
        PrepareExportSettings(**fields, memory_limit_mb=1 if blocks else None))
    assert (summary.block is not None) == blocks
    expected, found = folder_digest(plugin), folder_digest(core)
    assert sorted(found) == sorted(expected) == sorted(os.path.basename(path) for path in summary.files)
    assert len(found) >= 4
    for name in expected:
        assert found[name] == expected[name], name
