"""The postprocessing settings that prepareexport (one tile on files, prepare_export_files.py)
and processtiles (many tiles, regions/tiles.py) share: named and defaulted as the algorithms'
parameters, each field once; each pipeline's settings add their own fields to these."""

from __future__ import annotations

from dataclasses import dataclass

from ...definitions import BOUNDARY_MODES, PROBABILITY_SCALES, STATISTICS_SCALES
from ..kernels.checks import CONNECTIVITIES, check_choice, check_quality_level, check_share, check_size, check_threshold


@dataclass(frozen=True)
class PostprocessSettings:
    """DARTS' postprocessing of a tile, as darts:prepareexport's parameters name and default it."""

    threshold: float = 0.5
    mask_erosion_size: int = 10
    edge_erosion_size: int | None = None  # None: the mask erosion size; 0: no edge band
    min_object_size: int = 32
    quality_level: int | str = "low_quality"
    boundary: str = "remove"
    size_connectivity: int = 8
    device: str = "auto"
    statistics: str = "fraction"  # the polygons' statistics: of the probabilities 0..1, or DARTS' percent
    scale: str = "auto"  # how the probabilities are read (PROBABILITY_SCALES): from their data type, fraction or percent
    exclude: tuple | None = None  # (file, layer or None, OGR filter or None) of an exclusion mask
    max_excluded_share: float = 0.0  # objects with more of their pixels excluded are removed (0: any)

    def checked(self):
        """The same settings, every value checked (a bad value is an error before any file is read)."""
        check_threshold(self.threshold)
        check_size("mask_erosion_size", self.mask_erosion_size)
        if self.edge_erosion_size is not None:
            check_size("edge_erosion_size", self.edge_erosion_size)
        check_size("min_object_size", self.min_object_size)
        check_quality_level(self.quality_level)
        check_choice("boundary", self.boundary, BOUNDARY_MODES)
        check_choice("size_connectivity", self.size_connectivity, CONNECTIVITIES)
        check_choice("statistics", self.statistics, STATISTICS_SCALES)
        check_choice("probability scale", self.scale, PROBABILITY_SCALES)
        check_share("max_excluded_share", self.max_excluded_share, self.boundary)
        return self

    @classmethod
    def from_parameters(cls, values: dict, **more):
        """The settings from parameter values named as the algorithms name them (THRESHOLD, ...;
        those absent keep their defaults), for qgis_process and the command line alike; `more`
        gives the other fields."""
        given = {field: convert(values[name]) for field, (name, convert) in PARAMETERS.items()
                 if values.get(name) is not None}
        return cls(**{**given, **more})

    @property
    def edge_band(self) -> int:
        """The width of the edge band actually used."""
        return self.mask_erosion_size if self.edge_erosion_size is None else self.edge_erosion_size


# Each field's parameter (as darts:prepareexport and darts:processtiles name it) and how its
# value becomes the field's.
PARAMETERS = {
    "threshold": ("THRESHOLD", float),
    "mask_erosion_size": ("MASK_EROSION_SIZE", int),
    "edge_erosion_size": ("EDGE_EROSION_SIZE", int),
    "min_object_size": ("MIN_OBJECT_SIZE", int),
    "quality_level": ("QUALITY_LEVEL", str),
    "boundary": ("BOUNDARY", str),
    "size_connectivity": ("SIZE_CONNECTIVITY", int),
    "device": ("DEVICE", str),
    "scale": ("PROBABILITY_SCALE", str),
    "statistics": ("STATISTICS_SCALE", str),
    "max_excluded_share": ("MAX_EXCLUDED_SHARE", float),
}
