"""monovec: one normalised vector per input; classes, users and items are prototypes in that space."""

__version__ = "0.1.0"
