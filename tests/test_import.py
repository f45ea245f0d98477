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
