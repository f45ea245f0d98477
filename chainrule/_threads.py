"""How many threads NumPy's BLAS uses, read and set at run time (PyTorch's names).

The environment variables (``OPENBLAS_NUM_THREADS``...) only count when NumPy loads its BLAS;
these work at any time, through threadpoolctl. Small networks run fastest single-threaded.
"""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in NumPy's BLAS from now on (``torch.set_num_threads``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The number of threads NumPy's BLAS uses (``torch.get_num_threads``)."""
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts, default=1)
