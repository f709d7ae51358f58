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
