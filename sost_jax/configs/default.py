"""The default configuration (LAMOST-like data, 3900-8699 Å at 1 Å, the mock survey).

Copy this file to start your own: change fields of ``config`` and return it.
"""

from sost_jax.config import default_config


def get_config():
    config = default_config()
    return config
