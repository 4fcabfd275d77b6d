"""cluster engine (no Qt, no napari)."""
