"""napari docks: thin magicgui front ends over the engine.

Every dock is a :class:`._dock.Dock` (a scrollable ``magicgui`` Container):
parameters with tooltips, layer choosers that follow the viewer, Run/Cancel
and a status line. Jobs run through :func:`._jobs.run_job` on a
``napari.qt.threading`` worker with a ``napari.utils.progress`` bar and
cancel; layers are touched only on the main thread. :mod:`._layers` reads a
layer's pixel size (``scale`` + ``units``) and builds new layers' scale,
units and names.
"""
