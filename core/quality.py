"""DARTS quality masks (0 invalid, 1 low quality, 2 high quality) from common sources, with
upstream's mappings (semantics.md), for users who have no DARTS quality layer."""

from __future__ import annotations

import numpy as np

INVALID, LOW, HIGH = 0, 1, 2
QUALITY_SOURCES = ("scl", "udm2", "observations")

# Sentinel-2 L2A scene classification: 0 no data, 1 saturated/defective -> invalid;
# 2 dark area, 4 vegetation, 5 bare soil, 6 water, 7 unclassified, 10 thin cirrus -> high;
# 3 cloud shadow, 8/9 cloud, 11 snow and anything else -> low.
SCL_INVALID = (0, 1)
SCL_HIGH = (2, 4, 5, 6, 7, 10)
UDM2_LOW_BANDS = (2, 3, 4, 5, 6)  # snow, shadow, light haze, heavy haze, cloud (1-based)
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
    """Quality mask from a Sentinel-2 SCL band (2-D integer classes)."""
    scl = _integers("scl", scl)
    quality = np.full(scl.shape, LOW, dtype=np.uint8)
    quality[np.isin(scl, SCL_HIGH)] = HIGH
    quality[np.isin(scl, SCL_INVALID)] = INVALID
    return quality


def quality_from_udm2(udm2) -> np.ndarray:
    """Quality mask from a Planet UDM2 raster, bands first (8, y, x): band 8 (unusable data)
    non-zero -> invalid; else any of snow/shadow/haze/cloud (bands 2-6) set -> low; else high."""
    udm2 = _integers("udm2", udm2)
    if udm2.ndim != 3 or udm2.shape[0] < UDM2_UNUSABLE_BAND:
        raise ValueError(f"udm2 must have {UDM2_UNUSABLE_BAND} bands (bands, y, x), got shape {udm2.shape}")
    low = np.zeros(udm2.shape[1:], dtype=bool)
    for band in UDM2_LOW_BANDS:
        low |= udm2[band - 1] == 1
    quality = np.where(low, LOW, HIGH).astype(np.uint8)
    quality[udm2[UDM2_UNUSABLE_BAND - 1] != 0] = INVALID
    return quality


def quality_from_observations(count) -> np.ndarray:
    """Quality mask from the number of observations behind a mosaic pixel:
    0 -> invalid, 1-3 -> low, more than 3 -> high (negative counts and NaN are invalid)."""
    count = np.asarray(count)
    if count.dtype.kind == "f":
        count = np.nan_to_num(count, nan=0.0)  # no value: no observation
    else:
        count = _integers("count", count)
    quality = np.full(count.shape, LOW, dtype=np.uint8)
    quality[count > OBSERVATIONS_LOW_MAX] = HIGH
    quality[count <= 0] = INVALID
    return quality


def quality_mask(source: str, data) -> np.ndarray:
    """Dispatch on `source`, one of QUALITY_SOURCES."""
    builders = {"scl": quality_from_scl, "udm2": quality_from_udm2, "observations": quality_from_observations}
    if source not in builders:
        raise ValueError(f"source must be one of {QUALITY_SOURCES}, got {source!r}")
    return builders[source](data)
