"""The forecasting task."""
