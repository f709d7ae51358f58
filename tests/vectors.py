"""Reading GeoPackages back in tests (GDAL's osgeo, imported only when used)."""


def features(path, layer=None):
    """(layer name, [(attributes, geometry), ...]) of a GeoPackage layer (default: the first)."""
    from reading import open_read_only

    with open_read_only(path, "vector") as dataset:  # must outlive its layer: GDAL crashes on an orphaned layer
        source = dataset.GetLayerByName(layer) if layer else dataset.GetLayer(0)
        return source.GetName(), [(f.items(), f.GetGeometryRef().Clone()) for f in source]


def polygons_by_id(path):
    """{Region_ID: (attributes, geometry)} of a GeoPackage's first layer."""
    return {attributes["Region_ID"]: (attributes, geometry) for attributes, geometry in features(path)[1]}


UTM = 32606


def write_map(path, features, epsg=UTM, layer="slumps", year_field="year", coverage=None):
    """A GeoPackage layer of (year, (x0, y0, x1, y1) box) features (plus '<layer>_coverage' of
    (year, box)), as compareyears reads them."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg) if epsg else None
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    for name, items in ((layer, features), (f"{layer}_coverage", coverage)):
        if items is None:
            continue
        target = dataset.CreateLayer(name, srs if epsg else None, ogr.wkbPolygon)
        target.CreateField(ogr.FieldDefn(year_field, ogr.OFTInteger))
        for year, (x0, y0, x1, y1) in items:
            feature = ogr.Feature(target.GetLayerDefn())
            feature.SetField(year_field, year)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(
                f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"))
            target.CreateFeature(feature)
    dataset = None
    return str(path)
