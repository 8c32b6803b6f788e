"""Data: real datasets from the registry, users' own files, splits and batching."""

from rnnkit.data.registry import DATASETS, DatasetSpec, fetch, get_spec, is_cached, load_dataset
from rnnkit.data.types import (
    Dataset,
    LabeledTexts,
    Splits,
    TextClassificationDataset,
    TextCorpus,
    TimeSeriesDataset,
    WordVectors,
)

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "LabeledTexts",
    "Splits",
    "TextClassificationDataset",
    "TextCorpus",
    "TimeSeriesDataset",
    "WordVectors",
    "fetch",
    "get_spec",
    "is_cached",
    "load_dataset",
]
