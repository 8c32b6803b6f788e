"""The language_model task."""
