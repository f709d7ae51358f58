"""The Processing provider `darts`: DARTS postprocessing in the toolbox, modeler and qgis_process."""


from qgis.core import Qgis, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .definitions import ICON
from .dependencies import install_hint, missing_modules



class DartsProvider(QgsProcessingProvider):
    def id(self):
        return "darts"

    def name(self):
        return "DARTS postprocessing"

    def longName(self):  # noqa: N802
        return "DARTS postprocessing (thaw-slump segmentation)"

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]  # outputs are always written as compressed GeoTIFF

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802
        return ["gpkg"]  # polygons are always written as GeoPackage

    def supportsNonFileBasedOutput(self):  # noqa: N802
        return False  # outputs are files written atomically, never memory layers

    def loadAlgorithms(self):  # noqa: N802
        from .algorithms import ALGORITHMS

        missing = missing_modules()
        if missing:
            # The algorithms still load: each one fails with this message when run.
            QgsMessageLog.logMessage(install_hint(missing), "DARTS postprocessing", Qgis.MessageLevel.Warning)
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
