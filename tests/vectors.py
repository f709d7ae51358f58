"""Reading GeoPackages back in tests (GDAL's osgeo, imported only when used)."""


def features(path, layer=None):
    """(layer name, [(attributes, geometry), ...]) of a GeoPackage layer (default: the first)."""
    from osgeo import ogr

    dataset = ogr.Open(str(path))  # must outlive its layer: GDAL crashes on an orphaned layer
    source = dataset.GetLayerByName(layer) if layer else dataset.GetLayer(0)
    return source.GetName(), [(f.items(), f.GetGeometryRef().Clone()) for f in source]
