"""Core: names from the paper, input errors, seeds, atomic writes, the grid, cubes, GeoTIFF export and
figures. Everything else builds on this; it imports nothing else from appshot_model."""
