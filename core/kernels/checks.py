"""The checks of every argument the core takes: thresholds, sizes, shares, choices, quality
levels, arrays' kinds and shapes. One check per rule, used by every path (in memory, dask,
block-wise, tiles); each raises one clear ValueError or TypeError that names the argument.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

import numpy as np

from ... import definitions
from .runs import strip_rows

QUALITY_LEVELS = {level: value for value, level in enumerate(definitions.QUALITY_LEVELS)}  # none 0, low 1, high 2
BOUNDARY_MODES = definitions.BOUNDARY_MODES
CONNECTIVITIES = tuple(sorted(int(neighbours) for neighbours in definitions.CONNECTIVITIES))  # (4, 8)
# -- argument checks ---------------------------------------------------------------------

def check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return float(threshold)


def parse_thresholds(text: str, name: str = "thresholds") -> list[tuple[str, float]]:
    """(as written, value) of several thresholds in the one accepted form: decimal numbers
    with a point, in [0, 1], separated by commas, spaces or semicolons ("0.4,0.5,0.6"; 0 and
    1 as 0.0 and 1.0). A number without a point is refused, above all for a decimal comma:
    "0,1" would otherwise silently be the two thresholds 0 and 1."""
    items = [item for item in re.split(r"[\s,;]+", text.strip()) if item]
    for item in items:
        if re.fullmatch(r"[0-9]+", item):
            pair = re.fullmatch(r"\s*([0-9]+)\s*,\s*([0-9]+)\s*", text)
            hint = f"write {pair[1]}.{pair[2]} for one threshold" if pair else f"write {item}.0"
            if pair and int(pair[1]) <= 1 and int(pair[2]) <= 1:
                hint += f", or {pair[1]}.0,{pair[2]}.0 for two"
            raise ValueError(f"{name}: {item!r} has no decimal point; thresholds are decimal numbers with a point, "
                             f"separated by commas ({text.strip()!r}: {hint})")
        try:
            check_threshold(float(item))
        except ValueError:
            raise ValueError(f"{name}: {item!r} is no threshold in [0, 1] (give e.g. 0.4,0.5,0.6)") from None
    return [(item, float(item)) for item in items]


def parse_sizes(text: str, name: str = "min_object_sizes") -> list[int]:
    """Several pixel counts (minimum object sizes), separated by commas, spaces or semicolons
    ("0,16,32,64"), each once."""
    values = []
    for item in (item for item in re.split(r"[\s,;]+", text.strip()) if item):
        if not item.isdigit():
            raise ValueError(f"{name}: {item!r} is no pixel count (give e.g. 0,16,32,64)")
        if int(item) in values:
            raise ValueError(f"{name}: {item!r} is given twice")
        values.append(int(item))
    return values


def check_memory_limit(memory_limit_mb) -> None:
    """A memory limit in MB above which a raster goes block by block: None (half of the memory
    available) or a positive number."""
    if memory_limit_mb is not None and not memory_limit_mb > 0:
        raise ValueError(f"the memory limit must be a positive number of MB, got {memory_limit_mb!r}")


def check_share(name: str, value, boundary: str = "remove") -> float:
    """A share in [0, 1); a share above 0 asks to keep partly excluded objects, which only
    boundary "remove" does (clip cuts every excluded pixel)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) (0: any excluded pixel), got {value!r}")
    if float(value) > 0 and boundary != "remove":
        raise ValueError(f"{name} applies with boundary 'remove' (clip cuts every excluded pixel), got {value!r} "
                         f"with boundary {boundary!r}")
    return float(value)


def check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def check_quality_level(level) -> int:
    if isinstance(level, str) and level in QUALITY_LEVELS:
        return QUALITY_LEVELS[level]
    if not isinstance(level, bool) and isinstance(level, numbers.Integral) and level in (0, 1, 2):
        return int(level)
    raise ValueError(f"quality_level must be 0, 1, 2 or one of {tuple(QUALITY_LEVELS)}, got {level!r}")


def check_choice(name: str, value, choices: Sequence):
    if value not in choices or isinstance(value, bool):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_raster(name: str, array, kinds: str, what: str) -> None:
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (y, x) array, got shape {tuple(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(array.shape)})")
    if array.dtype.kind not in kinds:
        raise TypeError(f"{name} must be {what}, got dtype {array.dtype}")


def require_variables(tile, names) -> None:
    """KeyError naming the first of `names` missing from the tile, and what it has."""
    for name in names:
        if name not in tile:
            raise KeyError(f"tile has no variable {name!r} (has: {', '.join(map(str, tile.keys()))})")


def check_same_shape(**arrays) -> None:
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("rasters must have the same shape: " + ", ".join(f"{n} {s}" for n, s in shapes.items()))


def check_probabilities(name: str, probs, xp) -> None:
    check_raster(name, probs, "f", "float probabilities in [0, 1] (NaN = no prediction)")
    if _outside_unit_interval(probs, xp):  # NaN compares False: allowed
        low, high = float(xp.nanmin(probs)), float(xp.nanmax(probs))
        raise ValueError(f"{name} must lie in [0, 1] (NaN = no prediction), found values in [{low}, {high}]")


def _outside_unit_interval(probs, xp) -> bool:
    """Whether any value of `probs` is below 0 or above 1 (NaN is neither); on the host a strip
    of rows at a time, so no full-tile temporary is made."""
    if xp is not np or not isinstance(probs, np.ndarray):
        return bool(((probs < 0) | (probs > 1)).any())
    height, width = probs.shape
    step = strip_rows(width)
    below = np.empty((min(step, height), width), dtype=bool)
    above = np.empty_like(below)
    for top in range(0, height, step):
        part = probs[top:top + step]
        count = part.shape[0]
        np.less(part, 0, out=below[:count])
        np.greater(part, 1, out=above[:count])
        if below[:count].any() or above[:count].any():
            return True
    return False


def check_level_fits_mask(level: int, quality) -> None:
    """A bool mask says valid or not, never "high quality": level 2 would keep no pixel."""
    if level == 2 and quality.dtype == bool:
        raise ValueError("quality_level 2 (high_quality) needs a 0/1/2 quality mask, but quality_data_mask is bool, "
                         "which cannot mark high quality (no pixel would be kept): use quality_level 1 or a uint8 mask")


def check_quality_mask(name: str, quality, xp) -> None:
    check_raster(name, quality, "uib", "an integer quality mask (0 invalid, 1 low, 2 high quality)")
    if quality.dtype.kind != "b" and ((quality.dtype.kind == "i" and bool(quality.min() < 0)) or bool(quality.max() > 2)):
        raise ValueError(f"{name} must hold 0 (invalid), 1 (low) or 2 (high quality), found values up to {int(quality.max())}")
