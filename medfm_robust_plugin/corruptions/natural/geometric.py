"""geometric corruptions of the natural family."""
