"""Writing files safely: all outputs of a run appear together or not at all, inputs are
never replaced, and GeoTIFFs are written one way everywhere.

GDAL's Python bindings (`osgeo`) do the writing: every QGIS and every DARTS install has
them. They are imported only when a file is written, so the array API works without.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sys
import threading
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


def create_geotiff(path: str, shape, dtype, geotransform, crs=None, nodata: float | None = None,
                   compress: str = "DEFLATE", options=(), tags=None, description=None):
    """A new single-band, tiled, compressed GeoTIFF, open for writing (geotransform None: none
    written, as for a raster in pixel coordinates); create and close it inside gdal_writing.
    `tags` and `description` say how it was made (metadata.apply_metadata)."""
    gdal, _, _ = osgeo()
    dtype = np.dtype(dtype)
    if dtype not in _GDAL_TYPES:
        raise TypeError(f"cannot write dtype {dtype} (supported: {', '.join(map(str, _GDAL_TYPES))})")
    creation = [f"COMPRESS={compress}", "TILED=YES", "BIGTIFF=IF_SAFER", *options]
    if dtype.kind == "f":
        creation.append("PREDICTOR=3")
    dataset = gdal.GetDriverByName("GTiff").Create(path, shape[1], shape[0], 1,
                                                   gdal.GetDataTypeByName(_GDAL_TYPES[dtype]), creation)
    if geotransform is not None:
        dataset.SetGeoTransform(gdal_geotransform(geotransform))
    srs = spatial_reference(crs)
    if srs is not None:
        dataset.SetSpatialRef(srs)
    if nodata is not None:
        dataset.GetRasterBand(1).SetNoDataValue(nodata)
    from .metadata import apply_metadata

    apply_metadata(dataset, tags, description)
    return dataset


def write_geotiff(path: str, array: np.ndarray, geotransform, crs=None, nodata: float | None = None,
                  compress: str = "DEFLATE", tags=None, description=None) -> None:
    """A single-band, tiled, compressed GeoTIFF of `array` (see create_geotiff)."""
    with gdal_writing(path):
        dataset = create_geotiff(path, array.shape, array.dtype, geotransform, crs, nodata, compress,
                                 tags=tags, description=description)
        try:
            dataset.GetRasterBand(1).WriteArray(array)
            dataset.FlushCache()
        finally:
            dataset = None  # closes the file


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


def check_geopackage_to_write_into(geopackage: str, layer: str) -> None:
    """Refuse to write `layer` into the existing file `geopackage` unless it is a GeoPackage
    that can be read: GDAL would quietly make a new one of a damaged file, its other layers lost."""
    gdal, _, _ = osgeo()
    try:
        if not os.access(geopackage, os.R_OK):
            raise RuntimeError("permission denied")
        gdal.OpenEx(geopackage, gdal.OF_VECTOR, allowed_drivers=["GPKG"])
    except RuntimeError as error:
        raise ValueError(f"cannot write the layer {layer!r} into {geopackage}: it is not a readable GeoPackage "
                         f"({error})") from None


def replace_layer(geopackage: str, copy: str, source: str, layer: str | list[str]) -> None:
    """Write `copy`: the GeoPackage `geopackage` with its layer `layer` (or each of a list)
    replaced by (or added as) the layer of that name in `source`; `geopackage` itself is left
    alone, so the copy can replace it atomically."""
    layers = [layer] if isinstance(layer, str) else list(layer)
    gdal, _, _ = osgeo()
    check_geopackage_to_write_into(geopackage, layers[0])
    shutil.copyfile(geopackage, copy)
    with gdal_writing(copy):
        for name in layers:
            gdal.VectorTranslate(copy, source, options=["-preserve_fid"], accessMode="overwrite", layers=[name],
                                 layerCreationOptions=["FID=fid", "GEOMETRY_NAME=geometry"])


# Temporary files and backups carry the host and process that made them, so a later run can
# tell those of a dead run (killed, out of memory) from those of a run still going.
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
# Files GDAL may make beside one it writes: statistics, SQLite journals (GeoPackage).
SIDE_FILES = (".aux.xml", "-journal", "-wal", "-shm")
_TAG = re.compile(r"\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}\.(?P<kind>partial|backup)")


def _tag(kind: str) -> str:
    return f".{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}"


def final_name(path: str) -> str:
    """The file a temporary path or backup of AtomicFiles (perhaps one of another) stands for,
    for messages: the user never needs to know the hidden names."""
    folder, name = os.path.split(path)
    while True:
        match = re.fullmatch(r"\.(.+)" + _TAG.pattern + r"(\.[^.]*)?", name)
        if not match:
            return os.path.join(folder, name)
        name = match.group(1) + (match.group(5) or "")


def _alive(host: str, pid: int) -> bool:
    """Whether the process that made a temporary file may still run (unknown: yes)."""
    if host != _HOST or os.name != "posix":  # another machine (shared folder), or no cheap check
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def remove_stale(folder: str) -> None:
    """Remove what dead runs left in `folder`: their temporary files, and their backups (put
    back when the run died before moving the new file in, so the old file is not lost)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TAG.search(name)
        if not match or _alive(match["host"], int(match["pid"])):
            continue
        path = os.path.join(folder, name)
        target = final_name(path)
        with contextlib.suppress(OSError):
            if match["kind"] == "backup" and not os.path.lexists(target):
                os.replace(path, target)
            else:
                os.remove(path)


def check_writable(path: str, folder: bool = False) -> None:
    """Raise OSError naming `path` unless a file can be created there (or, for `folder`, in
    it): checked before any computing, so an impossible output fails at once. The nearest
    existing folder must be a folder we can write to: a probe file is created and removed."""
    parent = os.path.abspath(path if folder else os.path.dirname(os.path.abspath(path)))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OSError(f"cannot write {path}: {parent} is a file, not a folder")
    if not folder and os.path.isdir(path):
        raise OSError(f"cannot write {path}: it is a folder")
    probe = os.path.join(parent, "." + os.path.basename(path) + _tag("partial"))
    try:
        with open(probe, "x"):
            pass
        os.remove(probe)
    except OSError as error:
        raise OSError(f"cannot write {path}: {error.strerror or error}") from None


class AtomicFiles:
    """Hands out temporary paths beside the targets; `commit` moves them all into place,
    `discard` deletes them. Used as a context manager it commits only on success."""

    def __init__(self, inputs=()):
        self._inputs = {os.path.realpath(p) for p in inputs if p}
        self._pending: list[tuple[str, str]] = []
        self._scratch: list[str] = []
        self._made: list[str] = []  # folders made for the outputs: removed again unless committed

    def protect(self, inputs) -> None:
        """More files this run reads: no output may replace them."""
        self._inputs |= {os.path.realpath(p) for p in inputs if p}

    def reserve(self, target: str) -> str:
        """A temporary path to write `target` to (same folder and extension). Temporary files
        that dead runs left in that folder are removed first."""
        temporary = self._temporary(target)
        self._pending.append((temporary, target))
        return temporary

    def scratch(self, target: str) -> str:
        """A temporary path beside `target` for an intermediate file, deleted at the end."""
        temporary = self._temporary(target)
        self._scratch.append(temporary)
        return temporary

    def check(self, target: str) -> None:
        """Refuse `target` when it is one of the run's inputs (to be called before computing)."""
        if os.path.realpath(target) in self._inputs:
            raise ValueError(f"the output {target!r} is also an input: choose another file, inputs are never overwritten")

    def _temporary(self, target: str) -> str:
        self.check(target)
        folder = os.path.dirname(os.path.abspath(target))
        missing = folder
        while not os.path.lexists(missing) and os.path.dirname(missing) != missing:
            self._made.append(missing)
            missing = os.path.dirname(missing)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise OSError(f"cannot write {final_name(target)}: {error.strerror or error}") from None
        remove_stale(folder)
        stem, extension = os.path.splitext(os.path.basename(target))
        return os.path.join(folder, f".{stem}{_tag('partial')}{extension}")

    def commit(self) -> None:
        """Move every temporary file into place, all or none: existing targets are first
        moved aside to backups, then the new files in; on any failure the new files are
        removed and the backups put back. Only a crash in between can leave a mix (the next
        run into that folder then puts the backups of files not yet replaced back)."""
        backups, placed = [], []
        try:
            for _, target in self._pending:
                if os.path.isdir(target) and not os.path.islink(target):
                    raise OSError(f"cannot write {final_name(target)}: it is a folder")
            for _, target in self._pending:
                if os.path.lexists(target):
                    backup = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + _tag("backup"))
                    os.replace(target, backup)
                    backups.append((backup, target))
            for temporary, target in self._pending:
                os.replace(temporary, target)
                placed.append(target)
        except OSError as error:
            for target in placed:
                with contextlib.suppress(OSError):
                    os.remove(target)
            for backup, target in backups:
                with contextlib.suppress(OSError):
                    os.replace(backup, target)
            self.discard()
            if error.filename is None:
                raise
            raise OSError(f"could not write {final_name(error.filename)}: {error.strerror}") from None
        for backup, _ in backups:
            with contextlib.suppress(OSError):
                os.remove(backup)
        self._pending.clear()
        self._made.clear()
        self.discard()

    def discard(self) -> None:
        for temporary in [temporary for temporary, _ in self._pending] + self._scratch:
            for leftover in (temporary, *(temporary + suffix for suffix in SIDE_FILES)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(leftover)
        self._pending.clear()
        self._scratch.clear()
        for folder in sorted(set(self._made), key=len, reverse=True):  # deepest first; only if left empty
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._made.clear()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False
