"""Files: everything that touches a file through GDAL, and nothing that needs dask.

GDAL's bindings opened one way (names, read-only opening, errors), atomic outputs (all of a
run's files appear together or none), GeoTIFF reading and writing (whole or window by window),
grids, tags, GeoPackage layers (tracing objects into polygons and writing them), GeoParquet,
images, and exclusion polygons burnt onto a grid. Imports: `kernels` and `definitions`.
"""
