"""Runs inside a real QGIS desktop (qgis --code): runs prepareexport from its dialog (or, in
batch mode, two tiles from the batch dialog), waits for the styled layers, saves a canvas
screenshot, writes a JSON report of what a user sees, quits.

Reads its settings from the environment: DARTS_GUI_MODE ('dialog' or 'batch'),
DARTS_GUI_PARAMS (JSON parameters; a list of rows in batch mode), DARTS_GUI_REPORT (report
path), DARTS_GUI_SCREENSHOT (PNG path), DARTS_GUI_LAYERS (layers to wait for),
DARTS_GUI_SELECTED (a raster loaded and selected in the Layers panel before the run).
"""

import json
import os
import traceback

from qgis import processing
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsLayerTreeGroup,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
)
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSlot
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QAbstractSpinBox, QComboBox, QDialogButtonBox, QDoubleSpinBox, QLabel, QTextEdit
from qgis.utils import iface, plugins

REPORT = os.environ["DARTS_GUI_REPORT"]
MODE = os.environ.get("DARTS_GUI_MODE", "dialog")
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
    if isinstance(renderer, QgsCategorizedSymbolRenderer):
        entry["field"] = renderer.classAttribute()
        entry["categories"] = [[category.value(), category.label(), category.symbol().color().name()]
                               for category in renderer.categories()]
        entry["legend"] = [item.label() for item in renderer.legendSymbolItems()]
        entry["features"] = layer.featureCount()
        entry["counts"] = {value: sum(1 for feature in layer.getFeatures() if feature[renderer.classAttribute()] == value)
                           for value, _, _ in entry["categories"]}
    if isinstance(renderer, QgsSingleSymbolRenderer):
        symbol = renderer.symbol()
        entry["fill_alpha"] = symbol.color().alpha()
        entry["strokes"] = [symbol.symbolLayer(i).strokeColor().name() for i in range(symbol.symbolLayerCount())]
        entry["features"] = layer.featureCount()
    return entry


def tree(group):
    return [[child.name(), tree(child)] if isinstance(child, QgsLayerTreeGroup) else child.name()
            for child in group.children()]


class UrlCatcher(QObject):
    """Receives the URLs QDesktopServices would open (the help button's), instead of a browser."""

    @pyqtSlot("QUrl")
    def open(self, url):  # noqa: A003
        report.setdefault("opened_urls", []).append(url.toString())


CATCHER = UrlCatcher()


def widgets(dialog):
    """What the dialog shows for its parameters: combo texts, spin box texts, labels, tooltips."""
    shown = {}
    for name, wrapper in dialog.mainWidget().wrappers.items():
        widget = wrapper.wrappedWidget()
        entry = {"tooltip": widget.toolTip() if widget is not None else ""}
        if isinstance(widget, QComboBox):
            entry["items"] = [widget.itemText(i) for i in range(widget.count())]
            entry["current"] = widget.currentText()
            entry["value"] = wrapper.widgetValue()
        spin = widget if isinstance(widget, QAbstractSpinBox) else (widget.findChild(QAbstractSpinBox) if widget else None)
        if spin is not None:
            entry["text"] = spin.text()
            entry["special"] = spin.specialValueText()
            if isinstance(spin, QDoubleSpinBox):
                entry["decimals"] = spin.decimals()
        label = wrapper.wrappedLabel()
        if isinstance(label, QLabel):
            entry["label"] = label.text()
        shown[name] = entry
    return shown


def screenshot_and_finish():
    if report.get("screenshot"):
        return
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
        root = QgsProject.instance().layerTreeRoot()
        report["layers"] = [describe(layer) for layer in layers]
        report["layer_order"] = [layer.name() for layer in root.layerOrder()]
        report["tree"] = tree(root)
        from processing.core.ProcessingResults import resultsList

        report["results_viewer"] = [[result.name, result.filename] for result in resultsList.getResults()]
        if state["dialog"] is not None:
            report["dialog_title"] = state["dialog"].windowTitle()
            report["dialog_log"] = "\n".join(box.toPlainText() for box in state["dialog"].findChildren(QTextEdit))
            state["dialog"].close()
        canvas = iface.mapCanvas()
        selected = QgsProject.instance().mapLayersByName("selected basemap")
        for layer in selected:  # the screenshot shows the run's layers, not the basemap under them
            root.findLayer(layer.id()).setItemVisibilityChecked(False)
        canvas.zoomToFullExtent()
        canvas.refreshAllLayers()
        canvas.mapCanvasRefreshed.connect(screenshot_and_finish)
        QTimer.singleShot(15000, screenshot_and_finish)
        return
    QTimer.singleShot(250, poll)


def select_a_layer():
    """The normal state of a session: some layer is selected in the Layers panel."""
    path = os.environ.get("DARTS_GUI_SELECTED")
    if path:
        layer = QgsRasterLayer(path, "selected basemap")
        QgsProject.instance().addMapLayer(layer)
        iface.layerTreeView().setCurrentLayer(layer)
        report["selected_before_run"] = iface.layerTreeView().currentLayer().name()


def start_dialog():
    parameters = json.loads(os.environ["DARTS_GUI_PARAMS"])
    dialog = processing.createAlgorithmDialog(os.environ.get("DARTS_GUI_ALGORITHM", "darts:prepareexport"), parameters)
    state["dialog"] = dialog
    dialog.show()
    report["widgets"] = widgets(dialog)
    QDesktopServices.setUrlHandler("file", CATCHER, "open")
    dialog.buttonBox().button(QDialogButtonBox.StandardButton.Help).click()
    QDesktopServices.unsetUrlHandler("file")
    report["help_url"] = dialog.algorithm().helpUrl()
    dialog.runAlgorithm()  # the dialog's Run button


def start_batch():
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog

    rows = json.loads(os.environ["DARTS_GUI_PARAMS"])
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("darts:prepareexport")
    dialog = BatchAlgorithmDialog(algorithm, iface.mainWindow())
    state["dialog"] = dialog
    dialog.show()
    panel = dialog.mainWidget()
    panel.load_batch_file_3_40_version({panel.ROWS: [
        {panel.PARAMETERS: {k: v for k, v in row.items() if not k.startswith("OUTPUT_")},
         panel.OUTPUTS: {k: v for k, v in row.items() if k.startswith("OUTPUT_")}} for row in rows]})
    report["batch_rows"] = panel.batchRowCount()
    report["batch_combos"] = sorted({tuple(combo.itemText(i) for i in range(combo.count()))
                                     for combo in panel.findChildren(QComboBox) if combo.count()})
    panel.checkLoadLayersOnCompletion.setChecked(True)  # "Load layers on completion"
    dialog.runAlgorithm()


def start():
    try:
        select_a_layer()
        start_batch() if MODE == "batch" else start_dialog()
    except Exception:
        report["errors"].append(traceback.format_exc())
    QTimer.singleShot(250, poll)


QTimer.singleShot(500, start)
