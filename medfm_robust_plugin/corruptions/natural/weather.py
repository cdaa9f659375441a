"""weather corruptions of the natural family."""
