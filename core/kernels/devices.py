"""Device selection: one array module (numpy or cupy) for all of the core's logic."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Union

import numpy as np

from ...definitions import DEVICES

logger = logging.getLogger(__name__)
Device = Union[str, int]




@dataclass(frozen=True)
class Backend:
    """The array module to compute with and, on the GPU, the device number."""

    xp: ModuleType
    gpu_index: int | None = None

    @property
    def is_gpu(self) -> bool:
        return self.gpu_index is not None

    def context(self):
        """Context that makes this backend's device the current one."""
        if self.gpu_index is None:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(self.gpu_index)

    def asarray(self, array):
        """The array on this backend's device (no copy when it is already there)."""
        return self.xp.asarray(array)


CPU = Backend(np)


def _cupy_gpu_count() -> tuple[ModuleType | None, int]:
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising on import
        return None, 0
    try:
        return cupy, int(cupy.cuda.runtime.getDeviceCount())
    except Exception:
        return cupy, 0


def gpu_available() -> bool:
    """True when cupy is importable and sees at least one CUDA device."""
    return _cupy_gpu_count()[1] > 0


NO_GPU = "Device 'cuda' was chosen, but no CUDA GPU is usable (is cupy installed?): computing on the CPU."


def usable_device(device: str) -> tuple[str, str | None]:
    """(the device name a run passes on, a warning or None) for a chosen DEVICE: 'cuda'
    without a usable GPU becomes 'cpu', with the warning NO_GPU; any other name stays."""
    if device == "cuda" and not gpu_available():
        return "cpu", NO_GPU
    return device, None


def validate_device(device: Device) -> None:
    """Raise for a value that is no device name at all (a missing GPU is not an error)."""
    if isinstance(device, bool) or not isinstance(device, (str, int, np.integer)):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or a GPU index, got {device!r}")
    if isinstance(device, str) and device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} or a GPU index, got {device!r}")
    if not isinstance(device, str) and device < 0:
        raise ValueError(f"device index must be >= 0, got {device}")


def resolve_device(device: Device) -> Backend:
    """Pick the backend for `device`.

    "auto" takes the GPU when cupy sees one, else the CPU. "cuda" or an index without a
    usable GPU logs a warning and falls back to the CPU, as upstream does.
    """
    validate_device(device)
    if device == "cpu":
        return CPU
    cupy, count = _cupy_gpu_count()
    if device == "auto":
        return Backend(cupy, 0) if count else CPU
    index = 0 if device == "cuda" else int(device)
    if index >= count:
        reason = "cupy is not installed" if cupy is None else f"{count} CUDA device(s) found"
        logger.warning("Device %r was requested, but no such GPU is usable (%s): computing on the CPU.", device, reason)
        return CPU
    return Backend(cupy, index)


def array_module_of(array) -> ModuleType:
    """numpy or cupy, whichever the array belongs to."""
    if type(array).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def is_dataarray(value) -> bool:
    return type(value).__name__ == "DataArray" and hasattr(value, "dims")


def is_dask(value) -> bool:
    """True for a dask array, or a DataArray backed by one (the chunked path's input)."""
    data = getattr(value, "data", value) if is_dataarray(value) else value
    return type(data).__module__.split(".")[0] == "dask"


def dask_array(value):
    """The dask array behind a DataArray, or the dask array itself."""
    return value.data if is_dataarray(value) else value


def raw_array(value):
    """The raw array behind a DataArray (dask computed) or an array-like; stays on its device."""
    data = getattr(value, "data", value) if is_dataarray(value) else value
    if type(data).__module__.split(".")[0] == "dask":
        data = data.compute()
    if array_module_of(data) is np:
        data = np.asarray(data)
    return data


def to_host(value) -> np.ndarray:
    """A numpy array of a numpy, cupy, xarray or dask array (copied off the GPU if needed)."""
    data = raw_array(value)
    return data if isinstance(data, np.ndarray) else data.get()
