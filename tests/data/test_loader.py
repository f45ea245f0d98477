"""Tests for chainrule.data.loader: Dataset, TensorDataset, Subset and DataLoader."""

import numpy as np
import pytest

import chainrule
from chainrule.data import DataLoader, Dataset, Subset, TensorDataset


def _data(n=10):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return X, y


def _ys(loader):
    return [batch[1].data.tolist() for batch in loader]


def test_tensor_dataset_items_and_len():
    X, y = _data()
    ds = TensorDataset(X, chainrule.tensor(y))
    assert len(ds) == 10
    x3, y3 = ds[3]
    assert isinstance(x3, chainrule.Tensor) and x3.data.tolist() == [9.0, 10.0, 11.0]
    assert y3.item() == 3
    with pytest.raises(ValueError, match="same number of rows"):
        TensorDataset(X, y[:5])
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_batches_in_order_with_last_partial_batch():
    X, y = _data()
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert _ys(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64


def test_drop_last():
    X, y = _data()
    loader = DataLoader(TensorDataset(X, y), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert _ys(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(TensorDataset(X, y), batch_size=20, drop_last=True)) == 0
    assert list(DataLoader(TensorDataset(X, y), batch_size=20, drop_last=True)) == []


def test_shuffle_is_a_permutation_each_epoch_and_differs_between_epochs():
    X, y = _data(50)
    chainrule.manual_seed(0)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    epoch1 = sum(_ys(loader), [])
    epoch2 = sum(_ys(loader), [])
    assert sorted(epoch1) == sorted(epoch2) == list(range(50))
    assert epoch1 != list(range(50)) and epoch1 != epoch2
    # rows stay together: X row i belongs to label i
    for xb, yb in loader:
        np.testing.assert_array_equal(xb.data[:, 0], 3 * yb.data)


def test_shuffle_reproducible_with_manual_seed_and_with_generator():
    X, y = _data(30)
    ds = TensorDataset(X, y)

    def run_global(seed):
        chainrule.manual_seed(seed)
        loader = DataLoader(ds, batch_size=7, shuffle=True)
        return [_ys(loader) for _ in range(3)]

    assert run_global(1) == run_global(1)
    assert run_global(1) != run_global(2)

    def run_generator(seed):
        loader = DataLoader(ds, batch_size=7, shuffle=True, generator=chainrule.Generator(seed))
        chainrule.manual_seed(123 + seed)  # the global seed must not matter
        return [_ys(loader) for _ in range(3)]

    assert run_generator(5) == run_generator(5)
    assert run_generator(5) != run_generator(6)


def test_tensor_dataset_batches_are_fetched_with_one_index_operation():
    X, y = _data(100)

    class Counting(TensorDataset):
        items = getitems = 0

        def __getitem__(self, i):
            Counting.items += 1
            return super().__getitem__(i)

        def __getitems__(self, idx):
            Counting.getitems += 1
            return super().__getitems__(idx)

    loader = DataLoader(Counting(X, y), batch_size=32, shuffle=True)
    assert len(list(loader)) == 4
    assert Counting.items == 0 and Counting.getitems == 4
    # a Subset of it keeps the batched path
    sub = Subset(Counting(X, y), np.arange(0, 100, 2))
    batches = list(DataLoader(sub, batch_size=25))
    assert Counting.items == 0 and Counting.getitems == 6
    assert batches[1][1].data.tolist() == list(range(50, 100, 2))


def test_generic_dataset_samples_are_collated():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), i % 2

    xb, yb = next(iter(DataLoader(Squares(), batch_size=3)))
    assert xb.shape == (3, 2) and xb.data[2].tolist() == [2.0, 4.0]
    assert yb.data.tolist() == [0, 1, 0]

    class Dicts(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i}

    batch = list(DataLoader(Dicts(), batch_size=4))[0]
    assert batch["x"].shape == (4, 2) and batch["y"].data.tolist() == [0, 1, 2, 3]


def test_bad_arguments():
    X, y = _data()
    ds = TensorDataset(X, y)
    with pytest.raises(ValueError, match="positive"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="positive integer"):
        DataLoader(ds, batch_size=2.5)
    with pytest.raises(TypeError, match="TensorDataset"):
        DataLoader(42)
    with pytest.raises(NotImplementedError):
        len(Dataset())
