"""rnnkit: recurrent neural networks (RNN, LSTM, GRU) in PyTorch, from raw data to a served model."""

__version__ = "0.1.0"

__all__ = ["__version__"]
