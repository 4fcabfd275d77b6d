"""npe2 reader, writer and sample-data hooks (one module per pipeline).

Hooks translate between files and napari LayerData tuples by calling the
engine; they may use napari types but do not build Qt widgets.
"""
