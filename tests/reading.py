"""Reading files back in tests the way the core reads inputs (core.files.gdal.open_read_only):
read-only, and nothing written beside them (GDAL 3.10 writes an `.aux.xml` beside a
GeoPackage with metadata that a plain open closes unread)."""

from darts_postprocessing.core.files.gdal import open_read_only

__all__ = ["open_read_only", "pixels", "tags"]


def pixels(path, window=()):
    """All bands of a raster ((y, x) for one band), or a window (xoff, yoff, width, height)."""
    with open_read_only(path, "raster") as dataset:
        return dataset.ReadAsArray(*window)


def tags(path, domain=""):
    """The dataset-level metadata of a raster or GeoPackage."""
    with open_read_only(path) as dataset:
        return dict(dataset.GetMetadata(domain) or {})
