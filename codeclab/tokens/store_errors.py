"""The error every token-store reader and writer raises."""

from __future__ import annotations


class StoreError(ValueError):
    """A token store cannot be used as asked; the message names the store and the problem."""
