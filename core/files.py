"""Writing files safely: all outputs of a run appear together or not at all, inputs are
never replaced, and GeoTIFFs are written one way everywhere.

GDAL's Python bindings (`osgeo`) do the writing: every QGIS and every DARTS install has
them. They are imported only when a file is written, so the array API works without.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid

import numpy as np


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


_GDAL_TYPES = {np.dtype(np.uint8): "Byte", np.dtype(np.float32): "Float32", np.dtype(np.float64): "Float64",
               np.dtype(np.int32): "Int32"}


def write_geotiff(path: str, array: np.ndarray, geotransform, crs=None, nodata: float | None = None,
                  compress: str = "DEFLATE") -> None:
    """A single-band, tiled, compressed GeoTIFF (geotransform None: none written, as for a raster
    in pixel coordinates)."""
    gdal, _, _ = osgeo()
    if array.dtype not in _GDAL_TYPES:
        raise TypeError(f"cannot write dtype {array.dtype} (supported: {', '.join(map(str, _GDAL_TYPES))})")
    kind = gdal.GetDataTypeByName(_GDAL_TYPES[array.dtype])
    options = [f"COMPRESS={compress}", "TILED=YES", "BIGTIFF=IF_SAFER"]
    if array.dtype.kind == "f":
        options.append("PREDICTOR=3")
    with gdal_writing(path):
        dataset = gdal.GetDriverByName("GTiff").Create(path, array.shape[1], array.shape[0], 1, kind, options)
        try:
            if geotransform is not None:
                dataset.SetGeoTransform(gdal_geotransform(geotransform))
            srs = spatial_reference(crs)
            if srs is not None:
                dataset.SetSpatialRef(srs)
            band = dataset.GetRasterBand(1)
            if nodata is not None:
                band.SetNoDataValue(nodata)
            band.WriteArray(array)
            dataset.FlushCache()
        finally:
            dataset = band = None  # closes the file


@contextlib.contextmanager
def gdal_writing(path: str):
    """Raise OSError when GDAL fails to write `path`, also on flush or close: GDAL writes the
    last blocks, a GeoTIFF's directory and a GeoPackage's spatial index only then, and a
    failure there (disk full) would otherwise pass as success. GDAL 3.6 raises a close error
    in the dataset's destructor, where Python only prints it: it is caught here instead."""
    gdal, _, _ = osgeo()
    closing_errors = []
    previous_hook = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, RuntimeError):  # GDAL's, from a destructor
            closing_errors.append(unraisable.exc_value)
        else:
            previous_hook(unraisable)

    sys.unraisablehook = hook
    gdal.ErrorReset()
    try:
        yield
    except RuntimeError as error:  # GDAL's exceptions
        raise OSError(f"could not write {final_name(path)}: {error}") from None
    finally:
        sys.unraisablehook = previous_hook
    if closing_errors or gdal.GetLastErrorType() >= gdal.CE_Failure:
        message = closing_errors[0] if closing_errors else gdal.GetLastErrorMsg()
        gdal.ErrorReset()
        raise OSError(f"could not write {final_name(path)}: {message}")


def final_name(path: str) -> str:
    """The file a temporary path of AtomicFiles (perhaps one of another) stands for, for messages."""
    folder, name = os.path.split(path)
    while True:
        match = re.fullmatch(r"\.(.+)\.[0-9a-f]{8}\.partial(\.[^.]*)?", name)
        if not match:
            return os.path.join(folder, name)
        name = match.group(1) + (match.group(2) or "")


class AtomicFiles:
    """Hands out temporary paths beside the targets; `commit` moves them all into place,
    `discard` deletes them. Used as a context manager it commits only on success."""

    def __init__(self, inputs=()):
        self._inputs = {os.path.realpath(p) for p in inputs if p}
        self._pending: list[tuple[str, str]] = []

    def reserve(self, target: str) -> str:
        """A temporary path to write `target` to (same folder and extension)."""
        if os.path.realpath(target) in self._inputs:
            raise ValueError(f"the output {target!r} is also an input: choose another file, inputs are never overwritten")
        folder = os.path.dirname(os.path.abspath(target))
        os.makedirs(folder, exist_ok=True)
        stem, extension = os.path.splitext(os.path.basename(target))
        temporary = os.path.join(folder, f".{stem}.{uuid.uuid4().hex[:8]}.partial{extension}")
        self._pending.append((temporary, target))
        return temporary

    def commit(self) -> None:
        for temporary, target in self._pending:
            os.replace(temporary, target)
        self._pending.clear()

    def discard(self) -> None:
        for temporary, _ in self._pending:
            for leftover in (temporary, temporary + ".aux.xml"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False
