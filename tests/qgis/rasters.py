"""Reading test rasters back, and what the core makes of the sample tile."""

import numpy as np
from darts_postprocessing.core import prepare_export
from darts_postprocessing.core.files.gdal import open_read_only
from osgeo import gdal

gdal.UseExceptions()


def read(path):
    """The pixels of band 1 (the dataset is kept alive while its band is read)."""
    with open_read_only(path, "raster") as dataset:
        return dataset.GetRasterBand(1).ReadAsArray()


def read_percent(path):
    """DARTS' uint8 percent raster as float32 fractions, NaN where nodata (255)."""
    percent = read(path)
    return np.where(percent == 255, np.nan, percent / np.float32(100)).astype(np.float32)


def expected_on_sample(sample, **options):
    """The core's prepare_export on the sample tile's files, for comparing plugin outputs."""
    tile = {"probabilities": read_percent(sample["probabilities"]), "quality_data_mask": read(sample["quality"])}
    return prepare_export(tile, device="cpu", probability_scale="percent", **options)
