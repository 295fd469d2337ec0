"""Real context for a region: OpenStreetMap PoIs, population, land use, pre-gridded layers."""
