"""Samples, dataset loaders, and the embedded procedural phantoms."""
