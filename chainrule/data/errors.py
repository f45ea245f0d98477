"""Errors shared by the data readers, and the import guard for their optional dependencies."""

from __future__ import annotations

import importlib
from types import ModuleType


class DataError(ValueError):
    """Raised when input data cannot be read or used; the message says what to do."""


def optional_import(module: str, package: str) -> ModuleType:
    """Import `module` (from the optional `package`), or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'{package} is needed for this; install it with: pip install "chainrule[full]"'
        ) from exc
