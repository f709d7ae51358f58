"""The polygon parameters shared by polygonize, prepareexport and exporttile: the scale of
the statistics (STATISTICS_SCALE) and one feature per object or per part (POLYGON_LAYOUT)."""

from ..definitions import POLYGON_LAYOUTS, STATISTICS_SCALES

STATISTICS_SCALE = "STATISTICS_SCALE"
POLYGON_LAYOUT = "POLYGON_LAYOUT"
LAYOUTS = POLYGON_LAYOUTS


def add_statistics_scale(algorithm):
    algorithm.add_enum(STATISTICS_SCALE, "Statistics scale", STATISTICS_SCALES, "fraction", advanced=True,
                       help_text="fraction: min, max, mean, median, std of the probabilities 0..1; percent: as DARTS' "
                                 "export computes them, of the uint8 percent values int(p × 100) (min and max integers "
                                 "0..100)")


def add_polygon_layout(algorithm):
    algorithm.add_enum(POLYGON_LAYOUT, "Polygon features", LAYOUTS, "objects", advanced=True,
                       help_text="objects: one MultiPolygon per 8-connected object; parts: one Polygon per 4-connected "
                                 "part, each with its object's Region_ID and statistics (upstream DARTS' layout)")


def layout_of(algorithm, parameters, context, **fixed):
    """The core.files.layers.Layout the run's parameters ask for (a parameter the algorithm lacks
    keeps the default); `fixed` sets fields outright."""
    from ..core.files.layers import Layout

    names = {definition.name() for definition in algorithm.parameterDefinitions()}
    chosen = {}
    if STATISTICS_SCALE in names:
        chosen["statistics"] = algorithm.parameterAsEnumString(parameters, STATISTICS_SCALE, context) or "fraction"
    if POLYGON_LAYOUT in names:
        chosen["parts"] = algorithm.parameterAsEnumString(parameters, POLYGON_LAYOUT, context) == "parts"
    return Layout(**{**chosen, **fixed})

