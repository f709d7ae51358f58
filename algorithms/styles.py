"""How outputs look when loaded: objects red on transparent, the area outside the extent greyed,
probabilities with a colour ramp over 0..1, polygons as outlines that read on top of the
objects and on imagery, quality masks in three classes; and where they go: a run's layers
together in one layer group, in a fixed order."""

import os

from qgis.core import (
    QgsColorRampShader,
    QgsFillSymbol,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterShader,
    QgsSimpleFillSymbolLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

OBJECT_RED = QColor(215, 48, 31)
# Only the invalid area is drawn: a tile's extent never washes out what lies under its valid area
# (another tile's objects, imagery).
OUTSIDE_EXTENT = QColor(60, 60, 60, 110)
TRANSPARENT = QColor(0, 0, 0, 0)


def _paletted(layer, classes):
    renderer = QgsPalettedRasterRenderer(
        layer.dataProvider(), 1, [QgsPalettedRasterRenderer.Class(value, color, label) for value, color, label in classes]
    )
    layer.setRenderer(renderer)


def style_binarized(layer):
    _paletted(layer, [(0, TRANSPARENT, "background"), (1, OBJECT_RED, "thaw slump")])


def style_extent(layer):
    _paletted(layer, [(0, OUTSIDE_EXTENT, "outside the extent"), (1, TRANSPARENT, "valid extent")])


def style_probabilities(layer):
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
    shader_function = QgsColorRampShader(0.0, 1.0, ramp)
    shader_function.classifyColorRamp(11, -1)
    shader = QgsRasterShader(0.0, 1.0)
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)


def style_quality(layer):
    _paletted(layer, [(0, QColor(60, 60, 60, 160), "invalid"), (1, QColor(244, 165, 66), "low quality"),
                      (2, QColor(77, 175, 74), "high quality")])


def _outline(layer, color: QColor, width_mm: float, halo: QColor = None):
    """No fill; a line of `color`, over a wider `halo` line when given (reads on any background)."""
    symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": color.name(),
                                         "outline_width": str(width_mm), "outline_width_unit": "MM"})
    if halo is not None:
        under = QgsSimpleFillSymbolLayer.create({"color": "0,0,0,0", "outline_color": ",".join(map(str, halo.getRgb())),
                                                 "outline_width": str(width_mm * 2.2), "outline_width_unit": "MM"})
        symbol.insertSymbolLayer(0, under)
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


# Object outlines: yellow over a dark halo, visible on the red object fill and on imagery.
OUTLINE_YELLOW = QColor(255, 221, 0)
OUTLINE_HALO = QColor(20, 20, 20, 170)


def style_segments(layer):
    _outline(layer, OUTLINE_YELLOW, 0.4, OUTLINE_HALO)


def style_extent_polygons(layer):
    _outline(layer, QColor(49, 130, 189), 0.4)


def style_coverage(layer):
    """Where tiles could see slumps: grey outlines over a faint grey fill, under the slumps."""
    symbol = QgsFillSymbol.createSimple({"color": "160,160,160,40", "outline_color": "110,110,110",
                                         "outline_width": "0.3", "outline_width_unit": "MM"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def _filled(layer, fill: QColor, outline: QColor):
    """A see-through fill of `fill` with a firm `outline` (what lies beneath stays readable)."""
    symbol = QgsFillSymbol.createSimple({"color": ",".join(map(str, fill.getRgb())), "outline_color": outline.name(),
                                         "outline_width": "0.5", "outline_width_unit": "MM"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def style_false_positives(layer):
    """Predicted objects no reference slump matches: magenta (apart from the objects' red)."""
    _filled(layer, QColor(221, 28, 119, 90), QColor(221, 28, 119))


def style_missed(layer):
    """Reference slumps no predicted object matches: cyan."""
    _filled(layer, QColor(0, 174, 239, 90), QColor(0, 120, 200))


# Change between years: warm for what appeared or grew, cool for what shrank or went, grey for the rest.
CHANGE_CLASSES = (("new", QColor(215, 48, 31), "new"), ("grown", QColor(253, 141, 60), "grown"),
                  ("stable", QColor(150, 150, 150), "stable (area change within the tolerance)"),
                  ("shrunk", QColor(107, 174, 214), "shrunk"), ("gone", QColor(33, 102, 172), "gone"),
                  ("unobserved", QColor(255, 255, 255), "unobserved in one of the years"))


def style_changes(layer):
    """One class per change, with a legend that reads as words."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsRendererCategory

    categories = []
    for value, colour, label in CHANGE_CLASSES:
        fill = QColor(colour)
        fill.setAlpha(150)
        symbol = QgsFillSymbol.createSimple({"color": ",".join(map(str, fill.getRgb())), "outline_color": colour.name()
                                             if value != "unobserved" else "90,90,90", "outline_width": "0.4",
                                             "outline_width_unit": "MM",
                                             "outline_style": "dash" if value == "unobserved" else "solid"})
        categories.append(QgsRendererCategory(value, symbol, label))
    layer.setRenderer(QgsCategorizedSymbolRenderer("change", categories))


STYLES = {"coverage": style_coverage, "binarized": style_binarized, "extent": style_extent, "probabilities": style_probabilities,
          "quality": style_quality, "segments": style_segments, "extent_polygons": style_extent_polygons,
          "false_positives": style_false_positives, "missed": style_missed,
          "changes": style_changes}


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies one of STYLES to an output layer when Processing loads it."""

    def __init__(self, style: str, name: str = ""):
        super().__init__()
        self.style, self.name = style, name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        STYLES[self.style](layer)
        if self.name:
            layer.setName(self.name)
        layer.triggerRepaint()


# Processing holds post-processors by raw pointer: keep the Python objects alive here.
_KEEP_ALIVE = []


# Higher keys are drawn on top: polygons over objects over probabilities over the extent.
SORT_KEYS = {"changes": 6, "false_positives": 8, "missed": 7, "coverage": 0, "segments": 6, "extent_polygons": 5,
             "binarized": 3, "probabilities": 2, "extent": 1, "quality": 0}


def style_on_load(context, path: str, style: str, name: str = "") -> None:
    """Style (and optionally rename) the layer `path` when it is loaded after the run."""
    if not context.willLoadLayerOnCompletion(path):
        return
    processor = StyleOnLoad(style, name)
    _KEEP_ALIVE.append(processor)
    details = context.layerToLoadOnCompletionDetails(path)
    details.setPostProcessor(processor)
    details.layerSortKey = SORT_KEYS[style]


# DARTS' tile folders name their files alike (probabilities.tif, ...): the folder names the tile.
TILE_FILE_STEMS = {"probabilities", "binarized", "extent", "quality_data_mask", "prediction_segments",
                   "prediction_extent", "probabilities_masked"}


def tile_name(path: str) -> str:
    """What a run is about, for layer and group names: the input file's name, or its folder's
    for the files of a DARTS tile folder."""
    stem = os.path.splitext(os.path.basename(path.split("|")[0]))[0]
    folder = os.path.basename(os.path.dirname(os.path.abspath(path.split("|")[0])))
    return folder if stem.lower() in TILE_FILE_STEMS and folder else stem


def group_layers(context, paths, group: str, label: str = "") -> None:
    """Load the layers of `paths` together into the layer group `group` (created at the top of
    the layer tree, whatever layer is selected: QGIS then inserts them in sort-key order) and,
    with a `label`, name them '<output> (<label>)' so that runs of other tiles read apart.
    Inside a model the model's output names are kept and the group is the model's name."""
    scope = context.expressionContext()
    in_model = scope.hasVariable("model_name")
    if in_model:
        group, label = str(scope.variable("model_name") or group), ""
    for path in paths:
        if not isinstance(path, str) or not context.willLoadLayerOnCompletion(path):
            continue
        details = context.layerToLoadOnCompletionDetails(path)
        details.groupName = group
        if label:
            details.name = f"{details.name} ({label})"
            details.forceName = True
