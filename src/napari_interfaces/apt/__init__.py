"""apt engine (no Qt, no napari)."""
