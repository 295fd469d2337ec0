"""The AppShot model (§V): configs, patches, normalisation, networks, training, generation, the model
artefact on disk, and ``fit`` (run configs and training one peak-hour model from cubes)."""
