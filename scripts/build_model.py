#!/usr/bin/env python3
"""Regenerate resources/models/darts_postprocessing.model3 (erode mask -> binarize ->
polygonize) with
QGIS's own model API, so the file is always one QGIS can read.

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
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

TARGET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "models",
                      "darts_postprocessing.model3")


def _output(name, description, child, x, y):
    output = QgsProcessingModelOutput(name, description)
    output.setChildId(child)
    output.setChildOutputName("OUTPUT")
    output.setPosition(QPointF(x, y))
    return output


def build() -> QgsProcessingModelAlgorithm:
    model = QgsProcessingModelAlgorithm("DARTS erode mask, binarize, polygonize", "DARTS postprocessing", "darts")
    model.setHelpContent({"ALG_DESC": "DARTS' postprocessing as steps: the quality mask is eroded "
                                      "(darts:erodemask), the probabilities are binarized inside it "
                                      "(darts:binarize; same result as darts:prepareexport with boundary=remove), "
                                      "and the objects are polygonized with their statistics (darts:polygonize)."})
    inputs = [
        (QgsProcessingParameterRasterLayer("probabilities", "Probabilities"), 60),
        (QgsProcessingParameterRasterLayer("quality_mask", "Quality mask (0/1/2)"), 140),
        (QgsProcessingParameterNumber("threshold", "Threshold", QgsProcessingParameterNumber.Type.Double, 0.5,
                                      False, 0.0, 1.0), 220),
        (QgsProcessingParameterNumber("erosion_size", "Mask erosion size", QgsProcessingParameterNumber.Type.Integer,
                                      10, False, 0), 300),
        (QgsProcessingParameterNumber("min_object_size", "Minimum object size",
                                      QgsProcessingParameterNumber.Type.Integer, 32, False, 0), 380),
    ]
    for definition, y in inputs:
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120, y))
        model.addModelParameter(definition, component)

    def source(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    erode = QgsProcessingModelChildAlgorithm("darts:erodemask")
    erode.setChildId("erodemask")
    erode.setDescription("Erode quality mask")
    erode.setPosition(QPointF(400, 140))
    erode.addParameterSources("MASK", source("quality_mask"))
    erode.addParameterSources("SIZE", source("erosion_size"))
    erode.addParameterSources("QUALITY_LEVEL", [QgsProcessingModelChildParameterSource.fromStaticValue("low_quality")])

    binarize = QgsProcessingModelChildAlgorithm("darts:binarize")
    binarize.setChildId("binarize")
    binarize.setDescription("Binarize probabilities")
    binarize.setPosition(QPointF(680, 220))
    binarize.addParameterSources("PROBABILITIES", source("probabilities"))
    binarize.addParameterSources("MASK", [QgsProcessingModelChildParameterSource.fromChildOutput("erodemask", "OUTPUT")])
    binarize.addParameterSources("THRESHOLD", source("threshold"))
    binarize.addParameterSources("MIN_OBJECT_SIZE", source("min_object_size"))
    binarize.setModelOutputs({"binarized": _output("binarized", "Binarized segmentation", "binarize", 900, 260)})
    erode.setModelOutputs({"extent": _output("extent", "Extent", "erodemask", 620, 100)})
    polygonize = QgsProcessingModelChildAlgorithm("darts:polygonize")
    polygonize.setChildId("polygonize")
    polygonize.setDescription("Polygonize objects")
    polygonize.setPosition(QPointF(900, 380))
    polygonize.addParameterSources("BINARIZED", [QgsProcessingModelChildParameterSource.fromChildOutput("binarize",
                                                                                                         "OUTPUT")])
    polygonize.addParameterSources("PROBABILITIES", source("probabilities"))
    polygonize.setModelOutputs({"polygons": _output("polygons", "Object polygons", "polygonize", 1120, 420)})
    model.addChildAlgorithm(erode)
    model.addChildAlgorithm(binarize)
    model.addChildAlgorithm(polygonize)
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
