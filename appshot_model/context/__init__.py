"""Context: the 27 public attribute layers of a region (OpenStreetMap PoIs and roads, population,
land use, pre-gridded layers) on its grid, and the Spearman attribute selection (``selection``)."""
