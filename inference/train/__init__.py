"""Training of the demo models on synthetic phantoms: ``python -m inference.train [--quick] [--out DIR]``."""
