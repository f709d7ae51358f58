"""All outputs of a run appear together or not at all (AtomicFiles): each is written under a
hidden temporary name and moved into place at the end; inputs are never replaced and nothing
appears beside them; temporaries of dead runs are cleaned up.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from .gdal import gdal_writing, open_read_only, osgeo
from .names import HOST, TEMPORARY_TAG, final_name, temporary_suffix


def check_geopackage_to_write_into(geopackage: str, layer: str) -> None:
    """Refuse to write `layer` into the existing file `geopackage` unless it is a GeoPackage
    that can be read: GDAL would quietly make a new one of a damaged file, its other layers lost."""
    try:
        if not os.access(geopackage, os.R_OK):
            raise RuntimeError("permission denied")
        with open_read_only(geopackage, "vector", ["GPKG"]):
            pass
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
    with gdal_writing(copy), open_read_only(source, "vector") as dataset:
        for name in layers:
            gdal.VectorTranslate(copy, dataset, options=["-preserve_fid"], accessMode="overwrite", layers=[name],
                                 layerCreationOptions=["FID=fid", "GEOMETRY_NAME=geometry"])


def into_geopackage(path: str, layer: str | None, files, write, companions=lambda layer: ()):
    """Write the vector output `path` through `write(file, layer)` (its result is returned),
    `files` an AtomicFiles: a new GeoPackage with the layer `layer` (None: the file's name), or
    when `layer` is named and `path` exists, a copy of that file with the layer (and the layers
    `companions(layer)` names, which `write` adds beside it) replaced or added."""
    from .layers import layer_name

    if layer and os.path.exists(path):
        written = files.scratch(path)
        result = write(written, layer)
        replace_layer(path, files.reserve(path), written, [layer, *companions(layer)])
        return result
    return write(files.reserve(path), layer or layer_name(path))


# Files GDAL may make beside one it writes: statistics, SQLite journals (GeoPackage).
SIDE_FILES = (".aux.xml", "-journal", "-wal", "-shm")


def _alive(host: str, pid: int) -> bool:
    """Whether the process that made a temporary file may still run (unknown: yes)."""
    if host != HOST or os.name != "posix":  # another machine (shared folder), or no cheap check
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
        match = TEMPORARY_TAG.search(name)
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
    probe = os.path.join(parent, "." + os.path.basename(path) + temporary_suffix("partial"))
    try:
        with open(probe, "x"):
            pass
        os.remove(probe)
    except OSError as error:
        raise OSError(f"cannot write {path}: {error.strerror or error}") from None


def check_outputs(outputs, inputs=(), first=None) -> None:
    """Before any computing: each output ((name, path, folder) with `name` as messages call it,
    `folder` true for a folder to write into) can be written, none is one of `inputs` (they are
    never replaced), no two are the same file (the second would silently replace the first).
    `first(name, path)`: the caller's own check of each output, made before these (e.g. its format)."""
    read = {os.path.normcase(os.path.realpath(path)) for path in inputs if path}
    seen = {}
    for name, path, folder in outputs:
        if not path:
            continue
        if first is not None:
            first(name, path)
        try:
            check_writable(path, folder=folder)
        except OSError as error:
            raise OSError(f"{name}: {error}") from None
        key = os.path.normcase(os.path.realpath(path))
        if key in read:
            raise ValueError(f"{name}: {path} is also an input of this run: choose another file, inputs are never "
                             f"overwritten")
        if key in seen:
            raise ValueError(f"{seen[key]} and {name} are the same file ({path}): choose different files, "
                             f"or one would overwrite the other")
        seen[key] = name


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

    def reserved(self, target: str) -> str:
        """The temporary path `target` was last reserved as (until the outputs are committed)."""
        return next(temporary for temporary, final in reversed(self._pending) if final == target)

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
        return os.path.join(folder, f".{stem}{temporary_suffix('partial')}{extension}")

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
                    backup = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + temporary_suffix("backup"))
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
