"""GeoParquet twins of GeoPackage layers: upstream DARTS writes `prediction_segments.parquet`
and `prediction_extent.parquet` beside the GeoPackages, and its completeness check looks for
them. Written by GDAL's (Geo)Parquet driver where GDAL has one (GDAL >= 3.5 built with Arrow:
conda-forge, OSGeo4W), else with pyarrow; with neither they are skipped, and
`geoparquet_support` says why (Debian's GDAL 3.6 and QGIS Python have neither).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .gdal import gdal_writing, open_read_only, osgeo

GEOMETRY_COLUMN = "geometry"  # as geopandas' to_parquet (upstream) names it


def geoparquet_support() -> tuple[str | None, str]:
    """("gdal" or "pyarrow", "") when GeoParquet can be written here, else (None, why not)."""
    try:
        gdal, ogr, _ = osgeo()
        if ogr.GetDriverByName("Parquet") is not None:
            return "gdal", ""
        gdal_says = f"GDAL {gdal.__version__} has no Parquet driver"
    except ImportError:
        gdal_says = "GDAL's Python bindings are missing"
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except Exception as error:  # not installed, or built for another numpy: either way unusable
        return None, f"{gdal_says} and pyarrow cannot be imported ({type(error).__name__}: {error})"
    return "pyarrow", ""


def write_geoparquet(geopackage: str, layer: str, path: str, writer: str | None = None) -> None:
    """Write the layer `layer` of `geopackage` as the GeoParquet file `path` (GeoParquet 1.0,
    WKB geometry column `geometry`, the layer's fields in order, no feature id column).
    `writer`: "gdal" or "pyarrow" (default: what geoparquet_support finds)."""
    if writer is None:
        writer, why = geoparquet_support()
        if writer is None:
            raise RuntimeError(f"cannot write {path}: {why}")
    if writer == "gdal":
        gdal, _, _ = osgeo()
        with gdal_writing(path), open_read_only(geopackage, "vector") as source:
            gdal.VectorTranslate(path, source, format="Parquet", layers=[layer], options=["-unsetFid"],
                                 layerCreationOptions=["GEOMETRY_ENCODING=WKB", f"GEOMETRY_NAME={GEOMETRY_COLUMN}"])
    else:
        write_table(path, read_layer(geopackage, layer))


@dataclass
class LayerData:
    """A vector layer as columns: what a GeoParquet file holds."""

    columns: list  # (name, "int64" | "float64" | "string", values with None for NULL)
    wkb: list  # ISO WKB of each feature's geometry
    geometry_types: list  # GeoParquet's names, e.g. ["Polygon"]
    crs: dict | None  # PROJJSON, None for a layer without CRS
    bbox: list | None  # [xmin, ymin, xmax, ymax] of all features


def read_layer(geopackage: str, layer: str) -> LayerData:
    """The features of one GeoPackage layer, column by column (OGR)."""
    _, ogr, _ = osgeo()
    kinds = {ogr.OFTInteger: "int64", ogr.OFTInteger64: "int64", ogr.OFTReal: "float64"}
    with open_read_only(geopackage, "vector") as dataset:  # nothing written beside it
        source = dataset.GetLayerByName(layer)
        definition = source.GetLayerDefn()
        fields = [definition.GetFieldDefn(i) for i in range(definition.GetFieldCount())]
        values = [[] for _ in fields]
        wkb = []
        for feature in source:
            for index in range(len(fields)):
                values[index].append(feature.GetField(index) if feature.IsFieldSetAndNotNull(index) else None)
            wkb.append(bytes(feature.GetGeometryRef().ExportToIsoWkb()))
        srs = source.GetSpatialRef()
        extent = source.GetExtent() if wkb else None  # (xmin, xmax, ymin, ymax)
        name = ogr.GeometryTypeToName(ogr.GT_Flatten(source.GetGeomType())).title().replace(" ", "")
        return LayerData([(field.GetName(), kinds.get(field.GetType(), "string"), column)
                          for field, column in zip(fields, values)], wkb, [name],
                         json.loads(srs.ExportToPROJJSON()) if srs is not None else None,
                         [extent[0], extent[2], extent[1], extent[3]] if extent else None)


def write_table(path: str, data: LayerData) -> None:
    """Write `data` as a GeoParquet 1.0 file with pyarrow: the geometry column first (as
    geopandas writes it), then the fields; the `geo` metadata names its encoding, types, CRS
    (null when the layer has none: GeoParquet would otherwise assume WGS 84) and bbox."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {GEOMETRY_COLUMN: pa.array(data.wkb, type=pa.binary())}
    for name, kind, values in data.columns:
        arrays[name] = pa.array(values, type={"int64": pa.int64(), "float64": pa.float64()}.get(kind, pa.string()))
    column = {"encoding": "WKB", "geometry_types": data.geometry_types, "crs": data.crs}
    if data.bbox is not None:
        column["bbox"] = data.bbox
    geo = {"version": "1.0.0", "primary_column": GEOMETRY_COLUMN, "columns": {GEOMETRY_COLUMN: column}}
    table = pa.table(arrays).replace_schema_metadata({"geo": json.dumps(geo)})
    pq.write_table(table, path)
