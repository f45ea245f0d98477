"""Data for training: datasets and the mini-batch DataLoader, readers for tables (CSV/Parquet)
and image folders, and small example datasets that need no download."""

from chainrule.data.datasets import (
    load_diabetes,
    load_digits,
    make_image_folder,
    make_moons,
    make_spirals,
    make_tabular_csv,
    make_xor,
)
from chainrule.data.errors import DataError
from chainrule.data.images import ImageSpec, load_images, read_image_folder
from chainrule.data.loader import DataLoader, Dataset, Subset, TensorDataset
from chainrule.data.tabular import TabularPreprocessor, read_table, train_val_split

__all__ = [
    "DataError",
    "DataLoader",
    "Dataset",
    "ImageSpec",
    "Subset",
    "TabularPreprocessor",
    "TensorDataset",
    "load_diabetes",
    "load_digits",
    "load_images",
    "make_image_folder",
    "make_moons",
    "make_spirals",
    "make_tabular_csv",
    "make_xor",
    "read_image_folder",
    "read_table",
    "train_val_split",
]
