"""Tasks: what to learn from which data. Each supplies the loss and metrics to the engine."""
