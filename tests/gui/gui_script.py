"""Runs inside a real QGIS desktop (qgis --code): opens the prepareexport dialog, runs it,
waits for the styled layers, saves a canvas screenshot, writes a JSON report, quits.

Reads its settings from the environment: DARTS_GUI_PARAMS (JSON parameters),
DARTS_GUI_REPORT (report path), DARTS_GUI_SCREENSHOT (PNG path).
"""

import json
import os
import traceback

from qgis.core import (
    QgsApplication,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
)
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QTextEdit
from qgis.utils import iface, plugins

import processing

REPORT = os.environ["DARTS_GUI_REPORT"]
report = {"plugin_loaded": "darts_postprocessing" in plugins, "errors": []}
state = {"dialog": None, "ticks": 0}


def finish():
    with open(REPORT, "w") as handle:
        json.dump(report, handle, indent=1)
    QgsApplication.exit(0)


def describe(layer):
    renderer = layer.renderer()
    entry = {"name": layer.name(), "renderer": renderer.type(), "source": layer.source()}
    if isinstance(renderer, QgsPalettedRasterRenderer):
        entry["classes"] = {str(int(c.value)): [c.color.red(), c.color.green(), c.color.blue(), c.color.alpha()]
                            for c in renderer.classes()}
    if isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        entry["range"] = [renderer.classificationMin(), renderer.classificationMax()]
    if isinstance(renderer, QgsSingleSymbolRenderer):
        symbol = renderer.symbol()
        entry["fill_alpha"] = symbol.color().alpha()
        entry["stroke"] = symbol.symbolLayer(0).strokeColor().name()
        entry["features"] = layer.featureCount()
    return entry


def screenshot_and_finish():
    try:
        canvas = iface.mapCanvas()
        canvas.saveAsImage(os.environ["DARTS_GUI_SCREENSHOT"])
        report["screenshot"] = os.environ["DARTS_GUI_SCREENSHOT"]
    except Exception:
        report["errors"].append(traceback.format_exc())
    finish()


def poll():
    state["ticks"] += 1
    layers = list(QgsProject.instance().mapLayers().values())
    if len(layers) >= int(os.environ.get("DARTS_GUI_LAYERS", "3")) or state["ticks"] > 240:
        report["layers"] = [describe(layer) for layer in layers]
        report["layer_order"] = [layer.name() for layer in QgsProject.instance().layerTreeRoot().layerOrder()]
        if state["dialog"] is not None:
            report["dialog_title"] = state["dialog"].windowTitle()
            report["dialog_log"] = "\n".join(box.toPlainText() for box in state["dialog"].findChildren(QTextEdit))
            state["dialog"].close()
        canvas = iface.mapCanvas()
        canvas.zoomToFullExtent()
        canvas.refreshAllLayers()
        canvas.mapCanvasRefreshed.connect(screenshot_and_finish)
        QTimer.singleShot(15000, screenshot_and_finish)
        return
    QTimer.singleShot(250, poll)


def start():
    try:
        parameters = json.loads(os.environ["DARTS_GUI_PARAMS"])
        dialog = processing.createAlgorithmDialog("darts:prepareexport", parameters)
        state["dialog"] = dialog
        dialog.show()
        dialog.runAlgorithm()  # the dialog's Run button
    except Exception:
        report["errors"].append(traceback.format_exc())
    QTimer.singleShot(250, poll)


QTimer.singleShot(500, start)
