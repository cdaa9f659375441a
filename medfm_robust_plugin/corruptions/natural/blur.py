"""blur corruptions of the natural family."""
