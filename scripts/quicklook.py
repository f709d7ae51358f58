#!/usr/bin/env python3
"""A PNG quicklook of a prepareexport run: probabilities in grey, outside the extent dark
blue, kept objects red.

    python3 scripts/quicklook.py PROBABILITIES.tif EXTENT.tif BINARIZED.tif OUT.png
"""

import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def read(path):
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray()


def quicklook(probabilities_path, extent_path, binarized_path, png_path):
    probabilities = read(probabilities_path).astype(np.float32)
    if probabilities.max() > 1:  # DARTS' uint8 percent
        probabilities = np.where(probabilities == 255, np.nan, probabilities / 100)
    grey = np.nan_to_num(probabilities * 255).astype(np.uint8)
    rgb = np.stack([grey, grey, grey])
    outside = read(extent_path) == 0
    rgb[:, outside] = (rgb[:, outside] * 0.4 + np.array([[20], [30], [90]]) * 0.6).astype(np.uint8)
    objects = read(binarized_path) == 1
    rgb[:, objects] = np.array([[215], [48], [31]])
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    gdal.GetDriverByName("PNG").CreateCopy(png_path, memory)
    return png_path


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    print(quicklook(*sys.argv[1:]))
