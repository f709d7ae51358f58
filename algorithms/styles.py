"""How outputs look when loaded: objects red on transparent, extent as a light overlay,
probabilities with a colour ramp over 0..1, polygons as outlines, quality masks in three
classes."""

from qgis.core import (
    QgsColorRampShader,
    QgsFillSymbol,
    QgsSingleSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

OBJECT_RED = QColor(215, 48, 31)
EXTENT_OVERLAY = QColor(116, 169, 207, 90)
TRANSPARENT = QColor(0, 0, 0, 0)


def _paletted(layer, classes):
    renderer = QgsPalettedRasterRenderer(
        layer.dataProvider(), 1, [QgsPalettedRasterRenderer.Class(value, color, label) for value, color, label in classes]
    )
    layer.setRenderer(renderer)


def style_binarized(layer):
    _paletted(layer, [(0, TRANSPARENT, "background"), (1, OBJECT_RED, "thaw slump")])


def style_extent(layer):
    _paletted(layer, [(0, TRANSPARENT, "outside the extent"), (1, EXTENT_OVERLAY, "valid extent")])


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


def _outline(layer, color: QColor, width_mm: float):
    symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": color.name(),
                                         "outline_width": str(width_mm), "outline_width_unit": "MM"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def style_segments(layer):
    _outline(layer, OBJECT_RED, 0.6)


def style_extent_polygons(layer):
    _outline(layer, QColor(49, 130, 189), 0.4)


STYLES = {"binarized": style_binarized, "extent": style_extent, "probabilities": style_probabilities,
          "quality": style_quality, "segments": style_segments, "extent_polygons": style_extent_polygons}


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
SORT_KEYS = {"segments": 6, "extent_polygons": 5, "binarized": 3, "probabilities": 2, "extent": 1, "quality": 0}


def style_on_load(context, path: str, style: str, name: str = "") -> None:
    """Style (and optionally rename) the layer `path` when it is loaded after the run."""
    if not context.willLoadLayerOnCompletion(path):
        return
    processor = StyleOnLoad(style, name)
    _KEEP_ALIVE.append(processor)
    details = context.layerToLoadOnCompletionDetails(path)
    details.setPostProcessor(processor)
    details.layerSortKey = SORT_KEYS[style]
