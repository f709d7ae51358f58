"""Words instead of raw ids in the enum combo boxes of the dialog, the batch table and the
modeler. QGIS's own enum widget is kept (values, model sources, tooltips work as before); only
the texts of its items change, so the values that qgis_process and saved models pass stay the
ids. The GUI classes are imported only when QGIS's Processing GUI builds a widget (through the
parameter's widget_wrapper metadata), never by qgis_process."""


def relabel(widget, labels):
    """Show labels[id] for every combo box item whose text is an id, in `widget` and below it."""
    from qgis.PyQt.QtWidgets import QComboBox

    if widget is None:
        return
    boxes = [widget] if isinstance(widget, QComboBox) else []
    for box in boxes + widget.findChildren(QComboBox):
        for index in range(box.count()):
            if box.itemText(index) in labels:
                box.setItemText(index, labels[box.itemText(index)])


class LabelledEnumWrapper:
    """Stands in for a widget wrapper class: QGIS calls it with (parameter, dialog, row, column,
    **metadata) and gets QGIS's standard enum wrapper back, relabelled once its widget exists."""

    def __new__(cls, parameter, dialog, row=0, col=0, labels=None):
        from qgis.gui import QgsGui, QgsProcessingGui

        labels = labels or {}
        registry = QgsGui.processingGuiRegistry()
        kind = type(dialog).__name__
        if kind == "ModelerParametersDialog":
            wrapper = registry.createModelerParameterWidget(dialog.model, dialog.childId, parameter, dialog.context)
            relabel(wrapper, labels)
            return wrapper
        from processing.gui.wrappers import dialogTypes

        wrapper = registry.createParameterWidgetWrapper(parameter, dialogTypes.get(kind, QgsProcessingGui.WidgetType.Standard))
        wrapper.setDialog(dialog)
        create = wrapper.createWrappedWidget

        def create_relabelled(context):
            widget = create(context)
            relabel(widget, labels)
            return widget

        wrapper.createWrappedWidget = create_relabelled
        return wrapper
