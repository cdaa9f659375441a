"""Corruption implementations, one module (or subpackage) per family; each is a built-in plugin."""
