"""What a Processing run reported, for tests: one QgsProcessingFeedback that records it."""

from qgis.core import QgsProcessingFeedback


class Log(QgsProcessingFeedback):
    """The run's messages in `lines`, in order: infos, and warnings unless `warnings` is off;
    errors too with `errors`; warnings and errors as qgis_process prints them ("WARNING: ...",
    "ERROR: ...") with `prefixes`. `text`: the lines, each ended by a newline."""

    def __init__(self, infos=True, warnings=True, errors=False, prefixes=False):
        super().__init__()
        self.lines = []
        self.kinds = {"info": infos, "warning": warnings, "error": errors}
        self.prefixes = prefixes

    def _record(self, kind, text):
        if self.kinds[kind]:
            self.lines.append(f"{kind.upper()}: {text}" if self.prefixes and kind != "info" else text)

    def pushInfo(self, info):  # noqa: N802
        self._record("info", info)

    def pushWarning(self, warning):  # noqa: N802
        self._record("warning", warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self._record("error", error)

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def blockwise(self) -> bool:
        """Whether the run went block by block (its log says so)."""
        return any(line.startswith("Processing in blocks") for line in self.lines)
