"""What importing chainrule sets up for the process."""

import os
import subprocess
import sys

import pytest

import chainrule as cr


def _thread_timeout_seen(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    code = "import chainrule, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_openblas_threads_spin_briefly_unless_told_otherwise():
    """A long-spinning OpenBLAS pool made multi-threaded steps 3-40x slower on small machines:
    chainrule asks for a short spin before NumPy loads OpenBLAS, and keeps a user's setting."""
    assert _thread_timeout_seen(None) == "18"
    assert _thread_timeout_seen("25") == "25"


def test_blas_threads_are_read_and_set_at_run_time():
    before = cr.get_num_threads()
    try:
        cr.set_num_threads(1)
        assert cr.get_num_threads() == 1
    finally:
        cr.set_num_threads(before)
    assert cr.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_set_num_threads_wants_a_positive_int(bad):
    with pytest.raises(ValueError, match="n must be a positive int"):
        cr.set_num_threads(bad)


_FAULTS = """
import resource, numpy as np, chainrule
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):  # four 300 KB arrays at once, then freed: glibc would trim and fault them back
    arrays = [np.ones(75_000, np.float32) for _ in range(4)]; del arrays
before = faults()
for _ in range(50):
    arrays = [np.ones(75_000, np.float32) for _ in range(4)]; del arrays
print((faults() - before) / 50)
"""


def _faults_per_round() -> float:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=clean, capture_output=True,
                         text=True, check=True)
    return float(out.stdout)


def test_freed_arrays_are_reused_without_page_faults():
    """Importing chainrule sets glibc's thresholds so that freed arrays are reused (a page fault
    per 4 KiB otherwise)."""
    from chainrule import _malloc

    if not _malloc.is_glibc():
        pytest.skip("glibc's malloc only")
    assert _faults_per_round() < 5  # glibc's defaults: 74-296 here, by the heap's layout


class _FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.mark.parametrize("var", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_malloc_thresholds_are_set_unless_the_user_set_one(monkeypatch, var):
    from chainrule import _malloc

    libc = _FakeLibc()
    monkeypatch.setattr(_malloc.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(_malloc.os, "confstr", lambda name: "glibc 2.36", raising=False)
    for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(v, raising=False)
    assert _malloc.tune_malloc()
    assert libc.calls == [(-3, 32 << 20), (-1, 64 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    monkeypatch.setenv(var, "65536")
    assert not _malloc.tune_malloc()
    assert len(libc.calls) == 2
    monkeypatch.delenv(var)
    monkeypatch.setattr(_malloc.os, "confstr", lambda name: None, raising=False)  # e.g. musl
    assert not _malloc.tune_malloc()
    assert len(libc.calls) == 2
