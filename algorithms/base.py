"""What every DARTS algorithm shares: its identity in the toolbox, running it (dependency
check, progress and cancel, bad input as a clear Processing error) and writing polygons.
Parameter widgets live in parameters.py, the run's input and output files in paths.py."""

import os

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread, QUrl
from qgis.PyQt.QtGui import QIcon

from ..definitions import ICON
from ..dependencies import install_hint, missing_modules
from .parameters import ParametersMixin, threshold_label
from .paths import PathsMixin
from .styles import group_layers, tile_name

PLUGIN_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP_FOLDER = os.path.join(PLUGIN_FOLDER, "help")


CANCELED = "Canceled: no output was written."


class Canceled(Exception):
    """The user pressed cancel: stop, write nothing."""


class DartsAlgorithm(ParametersMixin, PathsMixin, QgsProcessingAlgorithm):
    """Base class: subclasses define the parameters and `execute`; parameter helpers come from
    ParametersMixin, the run's files from PathsMixin, running and cancel from here."""

    def tr(self, text):
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def group(self):
        return ""  # no group: the algorithms sit right under the provider, one level deep

    def groupId(self):  # noqa: N802
        return ""

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    # -- running -----------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        missing = missing_modules()
        if missing:
            raise QgsProcessingException(install_hint(missing))
        from .provenance import AtomicOutputs, describe_outputs

        outputs = AtomicOutputs(self.input_paths(parameters, context))
        try:
            self.check_outputs(parameters, context)
            describe_outputs(self, parameters, context, outputs)
            results = self.execute(parameters, context, feedback, outputs)
            self.check_canceled(feedback)
            outputs.commit()
            self.group_outputs(parameters, context, results)
            return results
        except Canceled:
            # An exception, not an empty result: qgis_process then exits non-zero, a script sees it.
            outputs.discard()
            raise QgsProcessingException(self.tr(CANCELED)) from None
        except (ValueError, TypeError, KeyError, OSError, RuntimeError, MemoryError) as error:
            # bad input, a file that could not be read or written (RuntimeError: GDAL's), a
            # raster too large for memory (MemoryError, cupy's OutOfMemoryError included)
            outputs.discard()
            raise QgsProcessingException(message_of(error)) from None
        except BaseException:
            outputs.discard()
            raise

    def group_outputs(self, parameters, context, results):
        """The run's loaded layers in one group named after its input (and threshold), each
        layer named with the input too (see styles.group_layers)."""
        paths = [item for value in results.values() for item in (value if isinstance(value, list) else [value])]
        if not any(isinstance(path, str) and context.willLoadLayerOnCompletion(path) for path in paths):
            return
        tile = self.run_label(parameters, context)
        group = tile
        several = self.thresholds(parameters, context) if hasattr(self, "thresholds") else []
        if several:
            group = self.tr("{} (thresholds {})").format(tile, ", ".join(threshold_label(t) for t in several))
        elif self.parameterDefinition("THRESHOLD") is not None:
            group = self.tr("{} (threshold {})").format(
                tile, threshold_label(self.parameterAsDouble(parameters, "THRESHOLD", context)))
        group_layers(context, paths, group, tile)

    def run_label(self, parameters, context):
        """The name of what the run is about: its first raster input (see styles.tile_name)."""
        for definition in self.parameterDefinitions():
            if definition.type() == "raster":
                path = self.raster_path(parameters, definition.name(), context, required=False)
                if path:
                    return tile_name(path)
        return self.displayName()

    @staticmethod
    def check_canceled(feedback):
        """Raise Canceled when the user canceled. qgis_process turns Ctrl-C into a cancel only
        while Qt handles events, which it lets happen once every 2 s of a run: in the main
        thread, pending events are handled here, so Ctrl-C is never ignored (it would let a
        run end with exit code 0 and commit its outputs)."""
        application = QCoreApplication.instance()
        if application is not None and QThread.currentThread() == application.thread():
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if feedback.isCanceled():
            raise Canceled

    def progress_reporter(self, feedback, start=0.0, span=100.0):
        """A core progress callback that feeds the Processing feedback and honours cancel. The
        text goes to the log once per stage; the percentage to the progress bar."""
        shown = []

        def report(fraction, message):
            self.check_canceled(feedback)
            feedback.setProgress(start + span * fraction)
            if shown != [message]:
                shown[:] = [message]
                feedback.setProgressText(message)

        return report

    def log_to(self, feedback):
        """A core pipeline's `log(sentence, warning)`: its notes and warnings into the Processing log."""

        def log(sentence, warning):
            (feedback.pushWarning if warning else feedback.pushInfo)(self.tr(sentence))

        return log

    def warn_percent(self, path, what, scale, feedback):
        """Warn when probabilities read as percent are all at most 1 (core.kernels.encodings.percent_doubt)."""
        from ..core.files.geotiff import percent_scale_doubt

        doubt = percent_scale_doubt(path, what, scale)
        if doubt:
            feedback.pushWarning(self.tr(doubt))

    def device_of(self, parameters, context, feedback):
        """The device name the core takes for the DEVICE parameter (core.kernels.devices.usable_device:
        'cuda' without a GPU warns and uses the CPU); the core's resolve_device turns it into a backend."""
        from ..core.kernels.devices import usable_device

        device, warning = usable_device(self.parameterAsEnumString(parameters, "DEVICE", context) or "auto")
        if warning:
            feedback.pushWarning(self.tr(warning))
        return device

    def area_note(self, grid, feedback):
        """Warn when the areas (area_m2, the report's) cannot be in m² on this grid; the note or None."""
        note = grid.area_note()
        if note:
            feedback.pushWarning(self.tr(note))
        return note

    def helpUrl(self):  # noqa: N802
        """The help page shipped in the plugin (scripts/package.py generates help/<name>.html);
        empty in a source checkout without it, which hides the dialog's help button."""
        page = os.path.join(HELP_FOLDER, f"{self.name()}.html")
        return QUrl.fromLocalFile(page).toString() if os.path.isfile(page) else ""


def message_of(error):
    """One line for the user (core.files.names.message_of)."""
    from ..core.files.names import message_of as message

    return message(error)
