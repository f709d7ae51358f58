#!/usr/bin/env python3
"""Regenerate resources/models/darts_postprocessing.model3 (erode mask -> binarize ->
polygonize -> collect outputs) with QGIS's own model API, so the file is always one QGIS can read.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/build_model.py
"""

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

QUALITY_LEVELS = ["none", "low_quality", "high_quality"]  # darts' values (algorithms/parameters.py)

TARGET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "models",
                      "darts_postprocessing.model3")


def _output(description, child, child_output, x, y):
    """A model output named as it reads: QGIS loads its layer under this name."""
    output = QgsProcessingModelOutput(description, description)
    output.setChildId(child)
    output.setChildOutputName(child_output)
    output.setPosition(QPointF(x, y))
    return output


# Columns: inputs, the three steps, the step that writes the outputs, outputs. A connector leaves
# a box's bottom right and enters the next one's top left: the last step sits below every step
# it collects, its outputs level with or below it, so that no connector runs through a box.
INPUT_X, STEP_X, COLLECT_X, OUTPUT_X, ROW_Y = 120, 460, 780, 1100, 80


def build() -> QgsProcessingModelAlgorithm:
    model = QgsProcessingModelAlgorithm("DARTS erode mask, binarize, polygonize", "DARTS postprocessing", "darts")
    model.setHelpContent({"ALG_DESC": "DARTS' postprocessing as steps: the quality mask is eroded "
                                      "(darts:erodemask), the probabilities are binarized inside it "
                                      "(darts:binarize; same result as darts:prepareexport with boundary=remove), "
                                      "and the objects are polygonized with their statistics (darts:polygonize). "
                                      "The quality mask is required here (the erosion needs it); without one, use "
                                      "darts:prepareexport, or make one with darts:qualitymask. The outputs are "
                                      "written together by the last step (darts:collectoutputs): when any step "
                                      "fails or is canceled, none is written."})
    quality_level = QgsProcessingParameterEnum("quality_level", "Quality level", QUALITY_LEVELS, False,
                                               "low_quality", False, True)
    # In the order of darts:prepareexport's dialog; on the canvas each beside the step it feeds.
    inputs = [  # (definition, help, canvas row)
        (QgsProcessingParameterRasterLayer("probabilities", "Probabilities"),
         "Segmentation probabilities: float 0..1 or DARTS' uint8 percent (0..100, nodata 255).", 4),
        (QgsProcessingParameterRasterLayer("quality_mask", "Quality mask (0/1/2)"),
         "0 invalid, 1 low, 2 high quality, on the probabilities' grid (required by the erosion step).", 0),
        (QgsProcessingParameterNumber("threshold", "Probability threshold", QgsProcessingParameterNumber.Type.Double,
                                      0.5, False, 0.0, 1.0), "Objects where p > threshold (DARTS' default 0.5).", 5),
        (QgsProcessingParameterNumber("erosion_size", "Mask erosion size", QgsProcessingParameterNumber.Type.Integer,
                                      10, False, 0), "Disk radius in pixels by which the valid area shrinks.", 2),
        (QgsProcessingParameterNumber("min_object_size", "Minimum object size",
                                      QgsProcessingParameterNumber.Type.Integer, 32, False, 0),
         "Objects with fewer pixels are removed.", 6),
        (quality_level, "Which quality mask pixels are valid before the erosion (low_quality: 1 and 2).", 1),
    ]
    inputs[2][0].setMetadata({"widget_wrapper": {"decimals": 2}})
    help_content = model.helpContent()
    for definition, help_text, row in inputs:
        help_content[definition.name()] = help_text  # QGIS 3.40 shows (and keeps) a model input's help from here
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(INPUT_X, ROW_Y * row + 60))
        model.addModelParameter(definition, component)
    model.setHelpContent(help_content)
    model.setParameterOrder([definition.name() for definition, _, _ in inputs])

    def source(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def child_output(child):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child, "OUTPUT")]

    erode = QgsProcessingModelChildAlgorithm("darts:erodemask")
    erode.setChildId("erodemask")
    erode.setDescription("Erode quality mask")
    erode.setPosition(QPointF(STEP_X, ROW_Y * 1 + 60))
    erode.addParameterSources("MASK", source("quality_mask"))
    erode.addParameterSources("SIZE", source("erosion_size"))
    erode.addParameterSources("QUALITY_LEVEL", source("quality_level"))

    binarize = QgsProcessingModelChildAlgorithm("darts:binarize")
    binarize.setChildId("binarize")
    binarize.setDescription("Binarize probabilities")
    binarize.setPosition(QPointF(STEP_X, ROW_Y * 5 + 60))
    binarize.addParameterSources("PROBABILITIES", source("probabilities"))
    binarize.addParameterSources("MASK", child_output("erodemask"))
    binarize.addParameterSources("THRESHOLD", source("threshold"))
    binarize.addParameterSources("MIN_OBJECT_SIZE", source("min_object_size"))

    polygonize = QgsProcessingModelChildAlgorithm("darts:polygonize")
    polygonize.setChildId("polygonize")
    polygonize.setDescription("Polygonize objects")
    polygonize.setPosition(QPointF(STEP_X, ROW_Y * 7 + 60))
    polygonize.addParameterSources("BINARIZED", child_output("binarize"))
    polygonize.addParameterSources("PROBABILITIES", source("probabilities"))

    # The steps above write to QGIS's temporary files; this last step copies them into the
    # model's outputs together, so a failing or canceled step leaves no output at all.
    collect = QgsProcessingModelChildAlgorithm("darts:collectoutputs")
    collect.setChildId("collectoutputs")
    collect.setDescription("Write outputs together")
    collect.setPosition(QPointF(COLLECT_X, ROW_Y * 8 + 60))
    collect.addParameterSources("BINARIZED", child_output("binarize"))
    collect.addParameterSources("EXTENT", child_output("erodemask"))
    collect.addParameterSources("POLYGONS", child_output("polygonize"))
    outputs = [("Extent", "OUTPUT_EXTENT", 8), ("Binarized segmentation", "OUTPUT_BINARIZED", 9),
               ("Object polygons", "OUTPUT_POLYGONS", 10)]
    collect.setModelOutputs({name: _output(name, "collectoutputs", output, OUTPUT_X, ROW_Y * row + 60)
                             for name, output, row in outputs})
    for child in (erode, binarize, polygonize, collect):
        model.addChildAlgorithm(child)
    model.updateDestinationParameters()
    return model


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    model = build()
    os.makedirs(os.path.dirname(TARGET), exist_ok=True)
    if not model.toFile(TARGET):
        sys.exit(f"could not write {TARGET}")
    print(TARGET)
