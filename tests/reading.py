"""Reading files back in tests the way the core reads inputs (core.files.gdal.open_read_only):
read-only, and nothing written beside them (GDAL 3.10 writes an `.aux.xml` beside a
GeoPackage with metadata that a plain open closes unread)."""

import os
import re

from darts_postprocessing.core.files.gdal import open_read_only

# What a run leaves only while it runs: AtomicFiles' temporaries and backups, SQLite journals.
HIDDEN = re.compile(r"\.partial|\.backup|-journal$|-wal$|-shm$")

__all__ = ["open_read_only", "pixels", "tags", "leftovers", "HIDDEN"]


def pixels(path, window=()):
    """All bands of a raster ((y, x) for one band), or a window (xoff, yoff, width, height)."""
    with open_read_only(path, "raster") as dataset:
        return dataset.ReadAsArray(*window)


def tags(path, domain=""):
    """The dataset-level metadata of a raster or GeoPackage."""
    with open_read_only(path) as dataset:
        return dict(dataset.GetMetadata(domain) or {})


def leftovers(out):
    """Hidden temporaries, backups and SQLite journals under the folder `out` (paths relative to it)."""
    return sorted(os.path.relpath(os.path.join(root, name), out) for root, _, names in os.walk(out)
                  for name in names if HIDDEN.search(name))
