"""What the pixels of the rasters users bring mean: probabilities (float 0..1 or DARTS' uint8
percent), quality masks (0/1/2) and binary rasters (0/1), with their nodata.

Each rule works on any window of a raster, so whole rasters (core/files/geotiff.py) and
blocks of rasters larger than memory (core/lazy/blockwise.py) are decoded the same way. Numpy only.
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


def keeps_percent(dtype, scale: str = "auto") -> bool:
    """Whether probabilities of this data type, read with `scale`, are DARTS' uint8 percent to
    keep as stored (stored_percent) where they are written back or their percent is used."""
    return np.dtype(dtype) == np.uint8 and scale != "fraction"


def decode_probabilities(data: np.ndarray, nodata, what: str, scale: str = "auto") -> np.ndarray:
    """Probabilities in [0, 1] (float32, or float64 for float64 input), NaN where there is no
    prediction; out-of-range values raise."""
    scale = probability_scale(data.dtype, what, scale)
    if scale == "percent" and data.dtype == np.uint8 and data.ndim == 2:
        decoded = _decode_uint8_percent(data, PERCENT_NODATA if nodata is None else nodata)
        if decoded is not None:
            return decoded
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


# uint8 rasters are decoded a strip of rows (about this many pixels) at a time: the strip's
# temporaries stay in the CPU cache, and no full-raster temporary is made.
_STRIP_PIXELS = 1 << 20


def _decode_uint8_percent(data: np.ndarray, missing_value):
    """decode_probabilities of DARTS' uint8 percent (`missing_value`: the nodata), the same
    float32 values and NaN, strip by strip; None when some valid value is above 100 (the
    caller's general path raises, with the range of the valid values)."""
    values = np.arange(256, dtype=np.uint8)
    missing = values == missing_value  # each of the 256 values compared as the pixels would be
    if _uint8_percent_out_of_range(data, missing):
        return None
    probabilities = np.empty(data.shape, dtype=np.float32)
    out = probabilities.reshape(-1)
    start = 0
    if missing.sum() <= 1:  # one nodata value (or none): divided as data.astype(float32) / float32(100) is
        nodata = np.flatnonzero(missing)
        for part in _uint8_strips(data):
            strip = out[start:start + part.size].reshape(part.shape)
            np.divide(part, np.float32(100), out=strip, dtype=np.float32)
            if nodata.size:
                np.copyto(strip, np.float32(np.nan), where=part == np.uint8(nodata[0]))
            start += part.size
        return probabilities
    decoded = values.astype(np.float32) / np.float32(100)  # each value as data.astype(float32) / float32(100) has it
    decoded[missing] = np.nan
    for part in _uint8_strips(data):
        np.take(decoded, part.reshape(-1), out=out[start:start + part.size], mode="clip")  # (values are 0..255)
        start += part.size
    return probabilities


def _uint8_percent_out_of_range(data: np.ndarray, missing: np.ndarray) -> bool:
    """Whether some pixel of uint8 `data` holds a value above 100 that is not missing
    (`missing`: bool per each of the 256 values)."""
    values = np.arange(256, dtype=np.uint8)
    if not (~missing & (values > 100)).any():
        return False
    if missing.sum() == 1 and missing[255]:
        # The usual nodata 255: v + 1 wraps it to 0, so the largest v + 1 > 101 means some v in 101..254.
        return any(part.size and part.max() > 101 for part in _shifted_strips(data))
    return bool(data.max() > 100 and (~missing & (values > 100))[_present_values(data)].any())


def _shifted_strips(data: np.ndarray):
    """v + 1 (uint8: 255 wraps to 0) of each strip of rows of uint8 `data`, in one reused
    buffer: a stored percent v passes the integer limit k (percent_limit) where v + 1 > k, and
    no v in 0..100 or 255 makes it above 101."""
    shifted = np.empty(min(data.size, _STRIP_PIXELS), dtype=np.uint8)
    for part in _uint8_strips(data):
        flat = shifted[:part.size].reshape(part.shape)
        np.add(part, np.uint8(1), out=flat)
        yield flat


def stored_percent(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """DARTS' uint8 percent as stored (0..100; PERCENT_NODATA where there is no prediction),
    checked as decode_probabilities checks it (its errors), without decoding it to float:
    decode_probabilities(data, nodata, what, "percent") is PERCENT_LOOKUP["fraction"] of it,
    value for value. `data` itself when its nodata is PERCENT_NODATA (or none), else a copy
    with the nodata value replaced."""
    if data.dtype != np.uint8 or data.ndim != 2:
        raise TypeError(f"{what}: stored percent must be a 2-D uint8 raster, got {data.dtype} with {data.ndim} dims")
    missing = np.arange(256) == (PERCENT_NODATA if nodata is None else nodata)
    if _uint8_percent_out_of_range(data, missing):
        decode_probabilities(data, nodata, what, "percent")  # raises, with the valid values' range
    if missing[PERCENT_NODATA] or not missing.any():  # (without a nodata value, 255 is out of range above)
        return data
    stored = data.copy()
    value = np.uint8(np.flatnonzero(missing)[0])
    for part in _uint8_strips(stored):
        np.copyto(part, np.uint8(PERCENT_NODATA), where=part == value)
    return stored


def percent_lookup(scale: str = "fraction") -> np.ndarray:
    """What each stored percent value 0..255 decodes to (float32; NaN for PERCENT_NODATA and
    values above 100): for "fraction" float32(v) / float32(100), as decode_probabilities and
    statistics_values compute it, for "percent" float32(v), as statistics_values has it."""
    values = np.arange(256, dtype=np.uint8).astype(np.float32)
    if scale == "fraction":
        values = values / np.float32(100)
    values[101:] = np.nan
    return values


def check_stored_percent(stored: np.ndarray) -> None:
    """Raise to_percent's error when uint8 percent as stored holds a value other than 0..100
    and PERCENT_NODATA; checked a strip of rows at a time (to_percent only to say which)."""
    if stored.ndim != 2 or any(part.size and part.max() > 101 for part in _shifted_strips(stored)):
        to_percent(stored)


def decode_stored_percent(stored, what: str = "probabilities", xp=np):
    """Float32 probabilities (NaN: no prediction) of uint8 percent as stored, value for value
    as decode_probabilities gives them; a value other than 0..100 and PERCENT_NODATA raises.
    numpy or cupy, or a dask block."""
    return xp.asarray(percent_lookup("fraction"))[checked_stored_percent(stored, what).astype(xp.intp)]


def checked_stored_percent(stored, what: str = "probabilities"):
    """`stored`, uint8 percent as stored, after the check that it holds 0..100 and
    PERCENT_NODATA only. numpy or cupy, or a dask block."""
    if bool(((stored > 100) & (stored != PERCENT_NODATA)).any()):
        raise ValueError(f"{what} is read as DARTS' uint8 percent 0..100 (nodata {PERCENT_NODATA}), but holds values "
                         f"from 101 to 254")
    return stored


def all_stored_nodata(stored: np.ndarray) -> bool:
    """Whether every value of uint8 percent as stored is PERCENT_NODATA, a strip of rows at a
    time, stopping at the first prediction."""
    return all(bool(part.min() == PERCENT_NODATA) for part in _uint8_strips(stored) if part.size)


def prediction_quality(probabilities: np.ndarray) -> np.ndarray:
    """The quality mask of a tile without one: 2 (high quality) where there is a prediction, 0
    where there is none; from float probabilities (NaN) or uint8 percent as stored (255)."""
    if probabilities.dtype == np.uint8:
        quality = np.not_equal(probabilities, np.uint8(PERCENT_NODATA)).view(np.uint8)
        quality <<= 1
        return quality
    return np.where(np.isnan(probabilities), 0, 2).astype(np.uint8)


def _uint8_strips(data: np.ndarray):
    """The strips of rows of a 2-D array, in row-major order."""
    step = max(1, _STRIP_PIXELS // max(1, data.shape[1]))
    for top in range(0, data.shape[0], step):
        yield data[top:top + step]


def _present_values(data: np.ndarray) -> np.ndarray:
    """Which of the 256 uint8 values occur in `data` (bool per value)."""
    present = np.zeros(256, dtype=bool)
    for part in _uint8_strips(data):
        present[np.unique(part)] = True
    return present


def check_quality_dtype(dtype, what: str) -> None:
    if np.dtype(dtype).kind not in "ui":
        raise ValueError(f"{what} has data type {np.dtype(dtype)}: expected an integer quality mask "
                         f"(0 invalid, 1 low quality, 2 high quality)")


def decode_quality(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """Quality mask as uint8 0 (invalid) / 1 (low) / 2 (high quality); nodata counts as 0."""
    check_quality_dtype(data.dtype, what)
    if quality_as_read(data, nodata):
        return data.copy()
    invalid = data == nodata if nodata is not None else np.zeros(data.shape, bool)
    outside = ~invalid & ((data < 0) | (data > 2))
    if outside.any():
        raise ValueError(f"{what} holds values up to {data[outside].max()}, but a quality mask holds 0 (invalid), "
                         f"1 (low) or 2 (high quality); build one first (e.g. from a Sentinel-2 SCL band)")
    quality = data.astype(np.uint8)
    quality[invalid] = 0
    return quality


def all_nodata(probabilities: np.ndarray) -> bool:
    """np.isnan(probabilities).all(), a strip of rows at a time, stopping at the first number."""
    if probabilities.ndim != 2:
        return bool(np.isnan(probabilities).all())
    step = max(1, _STRIP_PIXELS // max(1, probabilities.shape[1]))
    return all(bool(np.isnan(probabilities[top:top + step]).all()) for top in range(0, probabilities.shape[0], step))


def decode_quality_read(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """decode_quality of pixels just read, which nothing else holds: `data` itself, no copy,
    when it is a quality mask as read (quality_as_read)."""
    return data if quality_as_read(data, nodata) else decode_quality(data, nodata, what)


def stored_percent_layer(probabilities, scale: str) -> bool:
    """Whether a probabilities layer is DARTS' uint8 percent as stored (255: no prediction)."""
    return probabilities.dtype == np.uint8 and scale == "percent"


def quality_as_read(data: np.ndarray, nodata) -> bool:
    """Whether decode_quality gives `data` unchanged: a uint8 mask that holds only 0, 1 and 2
    and whose nodata (if any) no uint8 pixel can hold. A reader that owns `data` then keeps it
    instead of a copy."""
    return bool(data.dtype == np.uint8 and data.ndim == 2 and (nodata is None or not 0 <= nodata <= 255)
                and data.size and data.max() <= 2)


def decode_binary(data: np.ndarray, nodata, what: str) -> np.ndarray:
    """A 0/1 raster (binarized objects or an extent) as bool; nodata and NaN count as 0. A
    uint8 0/1 raster as written (no nodata of 1) comes back as a bool view of `data`."""
    if data.dtype == np.uint8 and not (nodata is not None and nodata == 1) and (data.size == 0 or data.max() <= 1):
        return data.view(bool)
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
