"""appshot_model: the AppShot library (grid, context, traffic, model, training, generation).

Plain Python + PyTorch; never imports dagster.
"""

__version__ = "0.1.0"
