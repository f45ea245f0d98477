"""Fixtures of the `chainrule` command tests: the command run in-process, output captured."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pytest

from chainrule.cli import main


def _run(*args: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _ok(*args: object) -> tuple[str, str]:
    code, out, err = _run(*args)
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


@pytest.fixture(scope="session")
def run() -> Callable[..., tuple[int, str, str]]:
    """``run(*args)``: main(args) with stdout and stderr captured: (exit code, stdout, stderr)."""
    return _run


@pytest.fixture(scope="session")
def ok() -> Callable[..., tuple[str, str]]:
    """``ok(*args)``: run a command that must succeed without a traceback; (stdout, stderr)."""
    return _ok
