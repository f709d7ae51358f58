#!/usr/bin/env python3
"""Write a DARTS-like sample tile: probabilities GeoTIFF and quality mask in UTM zone 6N.

    python3 scripts/sample_tile.py OUTPUT_FOLDER [--size 512] [--seed 0] [--float]

probabilities.tif is DARTS' export format (uint8 percent, nodata 255) unless --float is
given (float32 0..1, NaN nodata); quality_data_mask.tif is uint8 0/1/2.
"""

import argparse
import os

import numpy as np
from osgeo import gdal, osr
from scipy import ndimage as ndi

gdal.UseExceptions()
EPSG = 32606  # WGS 84 / UTM zone 6N (northern Alaska)
ORIGIN = (600000.0, 7800000.0)
PIXEL = 10.0


def sample_arrays(size=512, seed=0):
    """(probabilities float32 0..1 with NaN, quality uint8 0/1/2)."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random((size, size)), sigma=size / 90)
    field = (field - field.min()) / np.ptp(field)
    probabilities = np.clip(field ** 4 * 1.6, 0, 1).astype(np.float32)
    quality = np.full((size, size), 2, np.uint8)
    clouds = ndi.gaussian_filter(rng.random((size, size)), sigma=size / 40)
    quality[clouds > np.quantile(clouds, 0.85)] = 1
    yy, xx = np.mgrid[:size, :size]
    quality[(yy + xx) < size // 4] = 0  # no data outside the swath
    probabilities[quality == 0] = np.nan
    return probabilities, quality


def write_tif(path, array, nodata=None, epsg=EPSG, origin=ORIGIN, pixel=PIXEL):
    kind = {np.dtype(np.uint8): gdal.GDT_Byte, np.dtype(np.float32): gdal.GDT_Float32}[array.dtype]
    dataset = gdal.GetDriverByName("GTiff").Create(path, array.shape[1], array.shape[0], 1, kind, ["COMPRESS=LZW"])
    dataset.SetGeoTransform((origin[0], pixel, 0, origin[1], 0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    dataset.SetProjection(srs.ExportToWkt())
    band = dataset.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(array)
    dataset.FlushCache()


def percent(probabilities):
    """DARTS' export: int(p * 100) truncated, NaN -> 255."""
    out = np.full(probabilities.shape, 255, np.uint8)
    valid = ~np.isnan(probabilities)
    out[valid] = (probabilities[valid] * 100).astype(np.uint8)
    return out


def write_sample_tile(folder, size=512, seed=0, as_float=False):
    """Write the two rasters into `folder`; returns (probabilities path, quality path)."""
    os.makedirs(folder, exist_ok=True)
    probabilities, quality = sample_arrays(size, seed)
    probabilities_path = os.path.join(folder, "probabilities.tif")
    quality_path = os.path.join(folder, "quality_data_mask.tif")
    if as_float:
        write_tif(probabilities_path, probabilities, nodata=float("nan"))
    else:
        write_tif(probabilities_path, percent(probabilities), nodata=255)
    write_tif(quality_path, quality)
    return probabilities_path, quality_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float", action="store_true", dest="as_float")
    args = parser.parse_args()
    for path in write_sample_tile(args.folder, args.size, args.seed, args.as_float):
        print(path)
