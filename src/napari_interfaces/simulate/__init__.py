"""simulate engine (no Qt, no napari)."""
