"""Quick-look images of a tile as arrays: DARTS' thumbnail and the plugin's quicklook (probabilities
in grey, objects in red, outside the extent dark, the extent's outline), from the whole tile or
from samples of it (the block-wise path samples, so no whole raster is needed).
"""

from __future__ import annotations

import math

import numpy as np

from ...definitions import PERCENT_NODATA

OBJECT_RGB = (215, 48, 31)
OUTSIDE_RGB = (20, 30, 90)
EXTENT_LINE_RGB = (0, 200, 255)


def quicklook_step(shape, max_size: int = 512) -> int:
    """Every how many pixels the quicklook samples, so that it is at most `max_size` a side."""
    return max(1, math.ceil(max(shape) / max_size))


def quicklook_rgb(percent, extent, binarized, max_size: int = 512) -> np.ndarray:
    """(3, h, w) uint8 overview: probabilities in grey, outside the extent dark blue, objects
    red. Downsampled to at most `max_size` pixels a side; an object shows if any of its
    pixels falls in a quicklook pixel, so small slumps stay visible."""
    step = quicklook_step(percent.shape, max_size)
    return quicklook_of_samples(percent[::step, ::step], np.asarray(extent)[::step, ::step],
                                _block_any(np.asarray(binarized) != 0, step))


def quicklook_of_samples(percent, extent, objects) -> np.ndarray:
    """The quicklook from every step-th pixel of the percent and extent rasters and whether any
    object pixel lies in each step x step cell (the same from a whole raster or from blocks)."""
    rgb = _overview(percent, extent)
    rgb[:, objects[: rgb.shape[1], : rgb.shape[2]]] = np.array(OBJECT_RGB)[:, None]
    return rgb


def thumbnail_rgb(percent, extent, binarized, max_size: int = 512) -> np.ndarray:
    """(3, h, w) uint8 thumbnail: the quicklook's background (probabilities grey, outside the
    extent dark blue) with the objects' outlines in red and the extent's border in light
    blue, as DARTS' thumbnail draws objects and extent as outlines (over the optical image,
    which an export from probabilities does not have). Sampled as quicklook_rgb, then each
    pixel drawn 2 x 2 (up to 1024 pixels a side)."""
    step = quicklook_step(percent.shape, max_size)
    return thumbnail_of_samples(percent[::step, ::step], np.asarray(extent)[::step, ::step],
                                _block_any(np.asarray(binarized) != 0, step))


def thumbnail_of_samples(percent, extent, objects) -> np.ndarray:
    """The thumbnail from the quicklook's samples (quicklook_of_samples): the same from a whole
    raster or from blocks."""
    rgb = _overview(percent, extent)
    objects = objects[: rgb.shape[1], : rgb.shape[2]]
    rgb[:, _border(extent != 0, edge_inside=True)] = np.array(EXTENT_LINE_RGB)[:, None]
    rgb[:, _border(objects, edge_inside=False)] = np.array(OBJECT_RGB)[:, None]
    return rgb.repeat(2, axis=1).repeat(2, axis=2)  # lines 2 pixels wide: JPEG halves colour resolution


def _overview(percent, extent) -> np.ndarray:
    """The probabilities in grey, darkened to blue outside the extent."""
    grey = percent.astype(np.float32)
    grey = np.where(grey == PERCENT_NODATA, 0, grey * 2.55).astype(np.uint8)
    rgb = np.stack([grey, grey, grey])
    outside = extent == 0
    rgb[:, outside] = (rgb[:, outside] * 0.4 + np.array(OUTSIDE_RGB)[:, None] * 0.6).astype(np.uint8)
    return rgb


def _border(mask, edge_inside: bool) -> np.ndarray:
    """The pixels of `mask` with a 4-neighbour outside it; beyond the image's edge counts as
    inside (`edge_inside`: an extent that fills the tile has no border) or as outside (an
    object cut by the edge is still closed)."""
    padded = np.pad(mask, 1, constant_values=edge_inside)
    surrounded = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~surrounded


def _block_any(image, step: int) -> np.ndarray:
    """Whether any pixel of each step x step cell is set (cells at the edges may be smaller)."""
    if step == 1:
        return image
    height, width = image.shape
    padded = np.zeros((math.ceil(height / step) * step, math.ceil(width / step) * step), dtype=bool)
    padded[:height, :width] = image
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))
