"""Lazy compositions: the kernels over dask chunks and GDAL windows.

Chunked postprocessing with objects that cross chunk borders (chunked), their polygons and
statistics (chunked_polygons), rasters larger than memory read and written window by window,
and the scheduler or dask.distributed cluster that runs them (blockwise). dask is imported
only here and only when used. Imports: `files`, `kernels` and `definitions`.
"""
