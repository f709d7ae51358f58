"""Silently wrong results that must instead be refused, warned about or failed cleanly, checked
where a user meets them: qgis_process as a subprocess, on real files."""

import os
import resource
import signal

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis_cli import qgis_process
from rasters import read

gdal.UseExceptions()
TOO_BIG = str(2 ** 31)  # parameterAsInt wraps this to 0


def write_raster(path, array, crs=True, geotransform=True, nodata=None):
    """A GeoTIFF of `array` ((y, x) or (bands, y, x)), 10 m pixels in UTM 6N unless told otherwise."""
    bands = array.reshape(-1, *array.shape[-2:])
    kind = gdal.GetDataTypeByName({"uint8": "Byte", "int16": "Int16", "float32": "Float32",
                                   "float64": "Float64"}[str(array.dtype)])
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), bands.shape[2], bands.shape[1], len(bands), kind)
    if geotransform:
        dataset.SetGeoTransform((600000.0, 10.0, 0, 7800000.0, 0, -10.0))
    if crs:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(32606)
        dataset.SetProjection(srs.ExportToWkt())
    for index, band in enumerate(bands):
        if nodata is not None:
            dataset.GetRasterBand(index + 1).SetNoDataValue(nodata)
        dataset.GetRasterBand(index + 1).WriteArray(band)
    dataset = None
    return str(path)


def run(profile, algorithm, **parameters):
    return qgis_process(profile, "run", f"darts:{algorithm}", "--json", "--",
                        *[f"{name}={value}" for name, value in parameters.items()])


def refused(result, *words):
    """The run failed with a one-line message naming `words`, and no Python traceback."""
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)
    return text


def leftovers(folder):
    return [name for name in os.listdir(folder) if ".partial" in name]


# -- 1. integers that QGIS would wrap ------------------------------------------------------

@pytest.mark.parametrize("algorithm,parameter", [
    ("prepareexport", "MIN_OBJECT_SIZE"), ("prepareexport", "MASK_EROSION_SIZE"),
    ("prepareexport", "EDGE_EROSION_SIZE"), ("erodemask", "SIZE"), ("erodemask", "EDGE_SIZE"),
    ("binarize", "MIN_OBJECT_SIZE"),
])
def test_integers_beyond_32_bits_are_refused(profile, sample, tmp_path, algorithm, parameter):
    inputs = {"prepareexport": dict(PROBABILITIES=sample["probabilities"], OUTPUT_BINARIZED=tmp_path / "b.tif",
                                    OUTPUT_EXTENT=tmp_path / "e.tif"),
              "erodemask": dict(MASK=sample["quality"], OUTPUT=tmp_path / "b.tif"),
              "binarize": dict(PROBABILITIES=sample["probabilities"], OUTPUT=tmp_path / "b.tif")}[algorithm]
    refused(run(profile, algorithm, **inputs, **{parameter: TOO_BIG}), parameter)
    assert not (tmp_path / "b.tif").exists()
