"""The errors sost-jax raises on purpose: each message tells the user what to change.

The ``sost-jax`` command prints these as one line and exits with status 2; any other
exception is a bug and shows its traceback.
"""

from __future__ import annotations


class SostError(Exception):
    """Base of the errors raised on purpose, with a message meant for the user."""


class InputError(SostError, ValueError):
    """An input or a setting cannot work: a bad config value, a file that cannot be read,
    stores or libraries that do not fit together, too few spectra."""
