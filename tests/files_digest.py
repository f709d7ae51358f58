"""What a run wrote, for comparing two runs file by file: every GeoTIFF's pixels, nodata, band
description, grid and tags, every GeoPackage's layers (fields, features with their geometry
and attributes, metadata); the export date, which differs between runs, left out."""

import os

from darts_postprocessing.core.files.gdal import open_read_only

DATE = "DARTS_exportdate"


def without_date(metadata):
    return {key: value for key, value in (metadata or {}).items() if key != DATE}


def digest(path):
    with open_read_only(path) as dataset:
        found = {"tags": without_date(dataset.GetMetadata())}
        if dataset.RasterCount:
            band = dataset.GetRasterBand(1)
            pixels = band.ReadAsArray()
            found["raster"] = (pixels.dtype.str, pixels.shape, pixels.tobytes(), repr(band.GetNoDataValue()),
                               band.GetDescription(), dataset.GetGeoTransform(), dataset.GetProjection(),
                               dataset.GetMetadata("IMAGE_STRUCTURE"))
        for index in range(dataset.GetLayerCount()):
            layer = dataset.GetLayer(index)
            definition = layer.GetLayerDefn()
            fields = [(definition.GetFieldDefn(i).GetName(), definition.GetFieldDefn(i).GetTypeName())
                      for i in range(definition.GetFieldCount())]
            features = [(feature.GetFID(), feature.GetGeometryRef().ExportToWkt(),
                         [feature.GetField(i) for i in range(definition.GetFieldCount())]) for feature in layer]
            found[f"layer {layer.GetName()}"] = (fields, layer.GetGeometryColumn(), features,
                                                 without_date(layer.GetMetadata()))
    return found


def folder_digest(folder):
    """{file name: digest} of the GeoTIFFs and GeoPackages in `folder` (nothing else may be there
    but an HTML report)."""
    names = sorted(os.listdir(folder))
    assert all(name.endswith((".tif", ".gpkg", ".html")) for name in names), names
    return {name: digest(os.path.join(folder, name)) for name in names if not name.endswith(".html")}
