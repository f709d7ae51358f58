"""Writing test inputs as GeoTIFFs plainly with GDAL (not the core's writer: a test of the core's
reading should not rest on its own writing). One writer for every test."""

from osgeo import gdal, gdal_array, osr

gdal.UseExceptions()

UTM_6N = "EPSG:32606"
GRID_6N = (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0)  # 10 m pixels in UTM 6N


def write_raster(path, array, geotransform=GRID_6N, crs=UTM_6N, nodata=None, tags=None, data_type=None, options=()):
    """A GeoTIFF of `array` ((y, x) or (bands, y, x)) in its own data type unless `data_type`
    (a GDAL type) says otherwise; `geotransform` or `crs` None: left out; `crs` 'EPSG:n' or WKT;
    `options`: GDAL creation options (e.g. COMPRESS=LZW). Returns the path as a string."""
    bands = array.reshape(-1, *array.shape[-2:])
    kind = data_type if data_type is not None else gdal_array.NumericTypeCodeToGDALTypeCode(array.dtype)
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), bands.shape[2], bands.shape[1], len(bands), kind,
                                                   list(options))
    if geotransform is not None:
        dataset.SetGeoTransform(geotransform)
    if crs is not None:
        if crs.startswith("EPSG:"):
            srs = osr.SpatialReference()
            srs.ImportFromEPSG(int(crs[5:]))
            crs = srs.ExportToWkt()
        dataset.SetProjection(crs)
    if tags:
        dataset.SetMetadata(tags)
    for index, band in enumerate(bands):
        if nodata is not None:
            dataset.GetRasterBand(index + 1).SetNoDataValue(nodata)
        dataset.GetRasterBand(index + 1).WriteArray(band)
    dataset = None
    return str(path)
