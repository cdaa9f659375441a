"""digital corruptions of the natural family."""
