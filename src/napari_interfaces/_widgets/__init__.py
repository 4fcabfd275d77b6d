"""napari docks: thin magicgui/Qt front ends over the engine.

Each dock runs engine functions through :func:`._jobs.run_job`, which uses a
``napari.qt.threading`` worker, shows a ``napari.utils.progress`` bar, offers
cancel, and touches layers only on the main thread.
"""
