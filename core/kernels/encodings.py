"""What the pixels of the rasters users bring mean: probabilities (float 0..1 or DARTS' uint8
percent), quality masks (0/1/2) and binary rasters (0/1), with their nodata.

Each rule works on any window of a raster, so whole rasters (algorithms/raster_io.py) and
blocks of rasters larger than memory (blockwise.py) are decoded the same way. Numpy only.
"""

from __future__ import annotations

import numpy as np

from ...definitions import PERCENT_NODATA
from .devices import to_host




def check_raster_shape(band_count: int, width: int, height: int, what: str, bands: int | None = 1) -> None:
    """A raster with the expected number of bands (None: any) and at least one pixel."""
    if bands is not None and band_count != bands:
        hint = ": extract the band first (e.g. with 'Rearrange bands')." if bands == 1 else ""
        raise ValueError(f"{what} has {band_count} bands, but {'one band is' if bands == 1 else f'{bands} are'} "
                         f"expected{hint}")
    if width == 0 or height == 0:
        raise ValueError(f"{what} is empty ({width} x {height} pixels)")


def probability_scale(dtype, what: str, scale: str = "auto") -> str:
    """'fraction' or 'percent': `scale`, or for 'auto' what the data type says."""
    if scale != "auto":
        return scale
    if np.dtype(dtype) == np.uint8:
        return "percent"
    if np.dtype(dtype).kind == "f":
        return "fraction"
    raise ValueError(f"{what} has data type {np.dtype(dtype)}: expected float probabilities 0..1 or DARTS' uint8 "
                     f"percent 0..100 (nodata 255); set the probability scale parameter to read it anyway")


def percent_doubt(largest, dtype, what: str) -> str | None:
    """A warning when float probabilities read as percent (0..100) are all at most 1
    (`largest`: their largest valid value, None when none): most likely probabilities 0..1
    read with the wrong scale, so nearly nothing passes the threshold. (DARTS' uint8 percent
    at most 1 is a tile without slumps: no warning.)"""
    if largest is None or np.isnan(largest) or largest > 1 or np.dtype(dtype).kind != "f":
        return None
    return (f"{what} is read as percent (0..100), but none of its values is above {largest:g}: if it holds "
            f"probabilities 0..1, set the probability scale to 'fraction' (or 'auto' for a float raster)")


def probabilities_dtype(dtype, what: str, scale: str = "auto"):
    """The float type probabilities are decoded to: float64 stays float64, all else float32."""
    if probability_scale(dtype, what, scale) == "fraction" and np.dtype(dtype) == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def decode_probabilities(data: np.ndarray, nodata, what: str, scale: str = "auto") -> np.ndarray:
    """Probabilities in [0, 1] (float32, or float64 for float64 input), NaN where there is no
    prediction; out-of-range values raise."""
    scale = probability_scale(data.dtype, what, scale)
    if scale == "percent":
        missing = data == (PERCENT_NODATA if nodata is None else nodata)
        if data.dtype.kind == "f":
            missing |= np.isnan(data)
        valid = data[~missing]
        if valid.size and (valid.min() < 0 or valid.max() > 100):
            raise ValueError(f"{what} is read as percent, but holds values from {valid.min()} to {valid.max()} "
                             f"(expected 0..100, nodata {PERCENT_NODATA})")
        probabilities = data.astype(np.float32) / np.float32(100)
    else:
        probabilities = data.astype(probabilities_dtype(data.dtype, what, scale), copy=True)
        missing = np.isnan(probabilities)
        if nodata is not None and not np.isnan(nodata):
            missing |= data == nodata
        valid = probabilities[~missing]
        if valid.size and (valid.min() < 0 or valid.max() > 1):
            raise ValueError(f"{what} holds values from {valid.min():g} to {valid.max():g}, but probabilities must be in "
                             f"0..1; for DARTS' uint8 percent rasters set the probability scale to 'percent'")
    probabilities[missing] = np.nan
    return probabilities


def check_quality_dtype(dtype, what: str) -> None:
    if np.dtype(dtype).kind not in "ui":
        raise ValueError(f"{what} has data type {np.dtype(dtype)}: expected an integer quality mask "
                         f"(0 invalid, 1 low quality, 2 high quality)")


def decode_quality(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """Quality mask as uint8 0 (invalid) / 1 (low) / 2 (high quality); nodata counts as 0."""
    check_quality_dtype(data.dtype, what)
    invalid = data == nodata if nodata is not None else np.zeros(data.shape, bool)
    outside = ~invalid & ((data < 0) | (data > 2))
    if outside.any():
        raise ValueError(f"{what} holds values up to {data[outside].max()}, but a quality mask holds 0 (invalid), "
                         f"1 (low) or 2 (high quality); build one first (e.g. from a Sentinel-2 SCL band)")
    quality = data.astype(np.uint8)
    quality[invalid] = 0
    return quality


def decode_binary(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """A 0/1 raster (binarized objects or an extent) as bool; nodata and NaN count as 0."""
    missing = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        missing |= data == nodata
    odd = ~missing & (data != 0) & (data != 1)
    if odd.any():
        raise ValueError(f"{what} holds values other than 0 and 1 (e.g. {data[odd][0]:g}): give a binarized raster "
                         f"(an output of prepareexport or binarize), not probabilities")
    return (data == 1) & ~missing


def to_percent(probabilities) -> np.ndarray:
    """DARTS' uint8 probabilities: int(p * 100) truncated (computed in the input's float type,
    as upstream does), NaN -> 255. A uint8 array is taken as percent already and kept, so it
    must hold 0..100 or 255: anything else would be written as an impossible percentage."""
    probabilities = to_host(probabilities)
    if probabilities.dtype == np.uint8:
        odd = (probabilities > 100) & (probabilities != PERCENT_NODATA)
        if odd.any():
            raise ValueError(f"uint8 probabilities are DARTS percent 0..100 (nodata {PERCENT_NODATA}), but hold "
                             f"{int(probabilities[odd][0])}")
        return probabilities.copy()
    if probabilities.dtype.kind != "f":
        raise TypeError(f"probabilities must be float 0..1 or uint8 percent, got dtype {probabilities.dtype}")
    missing = np.isnan(probabilities)
    percent = np.where(missing, 0, probabilities * probabilities.dtype.type(100))
    if percent.min() < 0 or percent.max() > 100:
        raise ValueError("probabilities must lie in [0, 1] (NaN = no prediction)")
    percent = percent.astype(np.uint8)
    percent[missing] = PERCENT_NODATA
    return percent


def statistics_values(probabilities, scale: str = "fraction"):
    """The values object statistics are computed from (NaN = left out): for "fraction" the
    probabilities 0..1 (DARTS' uint8 percent, nodata 255, divided by 100); for "percent"
    DARTS' exported percent (export.to_percent: uint8 kept as is, floats truncated as upstream).
    float32, or float64 for float64 fractions."""

    values = to_host(probabilities)
    if values.dtype.kind == "f" and scale == "fraction":
        return values
    percent = to_percent(values)
    values = percent.astype(np.float32)
    values[percent == PERCENT_NODATA] = np.nan
    return values if scale == "percent" else values / np.float32(100)
