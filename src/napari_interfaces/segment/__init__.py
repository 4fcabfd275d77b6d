"""segment engine (no Qt, no napari)."""
