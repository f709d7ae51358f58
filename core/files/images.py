"""PNG and JPEG images written through GDAL (quick looks, DARTS' thumbnail), with the run's tags."""

from __future__ import annotations

import numpy as np

from .gdal import check_written, gdal_writing, osgeo
from .tags import comment_of

JPEG_QUALITY = 90


def write_png(path: str, rgb: np.ndarray, tags=None) -> None:
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    if tags:
        memory.SetMetadata(dict(tags))
    with gdal_writing(path):  # the tags as PNG text chunks, not an .aux.xml beside the file
        gdal.GetDriverByName("PNG").CreateCopy(path, memory, options=["WRITE_METADATA_AS_TEXT=YES"])
    check_written(path, rgb)


def write_jpeg(path: str, rgb: np.ndarray, tags=None) -> None:
    """A JPEG of the (3, h, w) image; `tags` go into its comment marker (metadata.comment_of),
    where GDAL shows them as the COMMENT item, as the JPEG driver keeps no other metadata."""
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    options = [f"QUALITY={JPEG_QUALITY}"] + ([f"COMMENT={comment_of(tags)}"] if tags else [])
    with gdal_writing(path):
        gdal.GetDriverByName("JPEG").CreateCopy(path, memory, options=options)
    check_written(path)  # lossy: read back whole, not compared


def write_image_locked(kind: str, path: str, rgb: np.ndarray, tags, lock) -> None:
    """The thumbnail (JPEG) or quicklook (PNG) of the block-wise export, written under its
    file's lock (blockwise.scheduler's locks). In the core, so that a dask cluster's workers,
    which get only the core, can run it."""
    with lock:
        (write_jpeg if kind == "thumbnail" else write_png)(path, rgb, tags)
