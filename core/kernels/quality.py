"""DARTS quality masks (0 invalid, 1 low quality, 2 high quality) from common sources, with
upstream's mappings (semantics.md), for users who have no DARTS quality layer."""

from __future__ import annotations

import numpy as np

from ...definitions import QUALITY_SOURCES

INVALID, LOW, HIGH = 0, 1, 2
# Sentinel-2 L2A scene classification: 0 no data, 1 saturated/defective -> invalid;
# 2 dark area, 4 vegetation, 5 bare soil, 6 water, 7 unclassified, 10 thin cirrus -> high;
# 3 cloud shadow, 8/9 cloud, 11 snow and anything else -> low.
SCL_INVALID = (0, 1)
SCL_HIGH = (2, 4, 5, 6, 7, 10)
SCL_CLASSES = range(12)  # 0..11; any other value means the band is not an SCL band
UDM2_LOW_BANDS = (2, 3, 4, 5, 6)  # snow, shadow, light haze, heavy haze, cloud (1-based)
UDM2_FLAG_BANDS = (1, 2, 3, 4, 5, 6)  # clear and the above: 0/1 flags
UDM2_CONFIDENCE_BAND = 7  # percent 0..100
UDM2_UNUSABLE_BAND = 8
OBSERVATIONS_LOW_MAX = 3  # 1-3 observations: low quality; more: high


def _integers(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "uib":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def quality_from_scl(scl) -> np.ndarray:
    """Quality mask from a Sentinel-2 SCL band (2-D integer classes 0..11; other values are
    an error, not "low quality": they mean the input is not an SCL band)."""
    scl = _integers("scl", scl)
    odd = (scl < SCL_CLASSES[0]) | (scl > SCL_CLASSES[-1])
    if odd.any():
        raise ValueError(f"SCL holds {int(scl[odd][0])}, but Sentinel-2 scene classes are 0..11: "
                         f"is this a Sentinel-2 L2A SCL band?")
    quality = np.full(scl.shape, LOW, dtype=np.uint8)
    quality[np.isin(scl, SCL_HIGH)] = HIGH
    quality[np.isin(scl, SCL_INVALID)] = INVALID
    return quality


def quality_from_udm2(udm2) -> np.ndarray:
    """Quality mask from a Planet UDM2 raster, bands first (8, y, x): band 8 (unusable data)
    non-zero -> invalid; else any of snow/shadow/haze/cloud (bands 2-6) set -> low; else high.
    Exactly 8 bands, bands 1-6 0/1 flags, band 7 (confidence) 0..100: anything else is not
    a UDM2 raster, and reading it anyway would give a wrong mask."""
    udm2 = _integers("udm2", udm2)
    if udm2.ndim != 3 or udm2.shape[0] != UDM2_UNUSABLE_BAND:
        raise ValueError(f"udm2 must have exactly {UDM2_UNUSABLE_BAND} bands (bands, y, x), got shape {udm2.shape}")
    for band in UDM2_FLAG_BANDS:
        flags = udm2[band - 1]
        odd = (flags != 0) & (flags != 1)
        if odd.any():
            raise ValueError(f"UDM2 band {band} holds {int(flags[odd][0])}, but bands 1-6 are flags of 0 or 1: "
                             f"is this a Planet UDM2 raster?")
    confidence = udm2[UDM2_CONFIDENCE_BAND - 1]
    if confidence.min() < 0 or confidence.max() > 100:
        raise ValueError(f"UDM2 band {UDM2_CONFIDENCE_BAND} (confidence) holds values from {int(confidence.min())} to "
                         f"{int(confidence.max())}, but it is a percentage 0..100: is this a Planet UDM2 raster?")
    low = np.zeros(udm2.shape[1:], dtype=bool)
    for band in UDM2_LOW_BANDS:
        low |= udm2[band - 1] == 1
    quality = np.where(low, LOW, HIGH).astype(np.uint8)
    quality[udm2[UDM2_UNUSABLE_BAND - 1] != 0] = INVALID
    return quality


def quality_from_observations(count) -> np.ndarray:
    """Quality mask from the number of observations behind a mosaic pixel:
    0 -> invalid, 1-3 -> low, more than 3 -> high. Counts are non-negative integers (float
    rasters too; NaN is no value: invalid): a negative or fractional count is an error, not
    "invalid" or "low quality", since it means the raster holds something else."""
    count = np.asarray(count)
    if count.dtype.kind == "f":
        count = np.nan_to_num(count, nan=0.0)  # no value: no observation
        odd = (count < 0) | (count != np.floor(count))
    else:
        count = _integers("count", count)
        odd = count < 0
    if odd.any():
        raise ValueError(f"observation counts are whole numbers of 0 or more, but the raster holds {count[odd][0]:g}: "
                         f"is this an observation count raster?")
    quality = np.full(count.shape, LOW, dtype=np.uint8)
    quality[count > OBSERVATIONS_LOW_MAX] = HIGH
    quality[count == 0] = INVALID
    return quality


def quality_mask(source: str, data) -> np.ndarray:
    """Dispatch on `source`, one of QUALITY_SOURCES."""
    builders = {"scl": quality_from_scl, "udm2": quality_from_udm2, "observations": quality_from_observations}
    if source not in builders:
        raise ValueError(f"source must be one of {QUALITY_SOURCES}, got {source!r}")
    return builders[source](data)
