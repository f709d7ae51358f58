"""GDAL's bindings (`osgeo`) opened one way: imported only when a file is read or written (so the
array API works without them), exceptions on, inputs opened read-only with no side file
(.aux.xml) written beside them, write errors that GDAL only prints caught and raised, and a
written raster proven whole by reading it back.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import traceback

import numpy as np

from .names import final_name


def osgeo():
    """(gdal, ogr, osr), or an ImportError that says how to get them."""
    try:
        from osgeo import gdal, ogr, osr
    except ImportError as error:
        raise ImportError("Writing GeoTIFF/GeoPackage files needs GDAL's Python bindings (module osgeo): "
                          "`apt install python3-gdal`, `conda install gdal` or `pip install gdal`") from error
    gdal.UseExceptions()
    ogr.UseExceptions()
    osr.UseExceptions()
    return gdal, ogr, osr


def spatial_reference(crs):
    """An osr.SpatialReference from WKT, 'EPSG:n', an EPSG number or an object with to_wkt();
    None for no CRS."""
    if crs is None or crs == "":
        return None
    _, _, osr = osgeo()
    srs = osr.SpatialReference()
    if isinstance(crs, (int, np.integer)):
        srs.ImportFromEPSG(int(crs))
    else:
        srs.SetFromUserInput(crs if isinstance(crs, str) else crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def gdal_geotransform(transform) -> tuple:
    """GDAL's 6-tuple from a GDAL tuple or a rasterio/affine Affine."""
    if hasattr(transform, "to_gdal"):
        return tuple(transform.to_gdal())
    transform = tuple(float(v) for v in transform)
    if len(transform) != 6:
        raise ValueError(f"geotransform must have 6 numbers (GDAL order), got {len(transform)}")
    return transform


@contextlib.contextmanager
def open_read_only(path: str, kind: str | None = None, drivers=None, options=()):
    """`with open_read_only(path, "raster" | "vector" | None) as dataset:` the GDAL dataset
    of `path` (restricted to the GDAL `drivers` if given; GDAL's open `options`), read-only,
    closed at the end of the block. Nothing is written beside it: GDAL 3.10 writes `<file>.aux.xml` beside a
    GeoPackage with dataset metadata that is closed without reading that metadata, so GDAL's
    auxiliary files (PAM) are off for this thread while the file is open (an `.aux.xml`
    already there is not read either). Children (bands, layers) must not outlive the block."""
    gdal, _, _ = osgeo()
    flags = gdal.OF_READONLY | {"raster": gdal.OF_RASTER, "vector": gdal.OF_VECTOR,
                                None: gdal.OF_RASTER | gdal.OF_VECTOR}[kind]
    with auxiliary_files_off():
        dataset = None
        try:
            dataset = gdal.OpenEx(str(path), flags, allowed_drivers=list(drivers or []), open_options=list(options))
            yield dataset
        finally:
            if dataset is not None and hasattr(dataset, "Close"):  # GDAL >= 3.8: closed now, with PAM still off
                dataset.Close()
            dataset = None  # older GDAL: closed with the last reference


@contextlib.contextmanager
def auxiliary_files_off():
    """GDAL's auxiliary files (PAM: `<file>.aux.xml`) off for this thread inside the block: a
    dataset opened and closed there neither reads nor writes one (open_read_only)."""
    gdal, _, _ = osgeo()
    previous = gdal.GetThreadLocalConfigOption("GDAL_PAM_ENABLED", None)
    gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_PAM_ENABLED", previous)


def check_written(path: str, expected: np.ndarray | None = None, offset=(0, 0)) -> None:
    """Prove a GeoTIFF (or PNG) just written whole: read every block back, in strips, and
    compare the pixels with `expected` when given (a window at `offset` (row, column); None:
    the whole file, only read). With GDAL 3.10 / libtiff 4.7 a write that fails for a full
    disk may only be printed to stderr while FlushCache and Close succeed (GDAL buffers small
    writes): the file is then truncated, and reading it back shows it. Raises OSError
    naming the user's file."""
    incomplete = OSError(_could_not_write(path, "the file is incomplete when read back, is the disk full?"))
    try:
        with open_read_only(path, "raster") as dataset:
            row, column = offset
            height, width = expected.shape[-2:] if expected is not None else (dataset.RasterYSize, dataset.RasterXSize)
            block = max(1, dataset.GetRasterBand(1).GetBlockSize()[1])
            step = max(block, 2 ** 22 // max(1, width) // block * block)  # rows of about 4 M pixels
            for top in range(0, height, step):
                rows = min(step, height - top)
                pixels = dataset.ReadAsArray(column, row + top, width, rows)
                if expected is not None and not np.array_equal(pixels, expected[..., top:top + rows, :],
                                                               equal_nan=expected.dtype.kind == "f"):
                    raise incomplete
    except RuntimeError:  # GDAL's: a block or the directory beyond the end of the file
        raise incomplete from None


_closing = threading.local()  # per thread: the close errors of the write under way, or None
_hook_installed = threading.Lock()
_previous_hook = sys.__unraisablehook__


def _catch_closing_errors(unraisable):
    """Python's hook for exceptions it cannot raise: a GDAL error from a dataset's destructor
    during a gdal_writing block goes to that block (of the same thread); anything else on."""
    errors = getattr(_closing, "errors", None)
    if errors is not None and isinstance(unraisable.exc_value, RuntimeError):  # GDAL's, from a destructor
        errors.append(unraisable.exc_value)
    else:
        _previous_hook(unraisable)


@contextlib.contextmanager
def gdal_writing(path: str):
    """Raise OSError when GDAL fails to write `path`, also on flush or close: GDAL writes the
    last blocks, a GeoTIFF's directory and a GeoPackage's spatial index only then, and a
    failure there (disk full) would otherwise pass as success. GDAL 3.6 raises a close error
    in the dataset's destructor, where Python only prints it: it is caught here instead, by
    one hook installed once that sorts errors by thread, so concurrent writers never swap it."""
    global _previous_hook
    gdal, _, _ = osgeo()
    with _hook_installed:
        if sys.unraisablehook is not _catch_closing_errors:
            _previous_hook, sys.unraisablehook = sys.unraisablehook, _catch_closing_errors
    outer, _closing.errors = getattr(_closing, "errors", None), []
    closing_errors = _closing.errors
    gdal.ErrorReset()
    try:
        yield
    except RuntimeError as error:  # GDAL's exceptions
        # The failed call's finished frames hold the dataset (as `self`): close it now, while
        # its close error is still caught here, not as a printed traceback when the caller
        # lets the error go.
        traceback.clear_frames(error.__traceback__)
        raise OSError(_could_not_write(path, error)) from None
    finally:
        _closing.errors = outer
    if closing_errors or gdal.GetLastErrorType() >= gdal.CE_Failure:
        message = closing_errors[0] if closing_errors else gdal.GetLastErrorMsg()
        gdal.ErrorReset()
        raise OSError(_could_not_write(path, message))


def _could_not_write(path: str, message) -> str:
    """The error for `path` with GDAL's message (which may be empty, as on a full disk), the
    temporary file called by the name the user gave."""
    detail = " ".join(str(message).replace(path, final_name(path)).split())
    return f"could not write {final_name(path)}" + (f": {detail}" if detail else "")
