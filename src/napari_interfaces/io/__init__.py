"""io engine (no Qt, no napari)."""
