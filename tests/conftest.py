"""Test set-up: four host CPU devices (so sharded code runs), strict JAX numerics, data paths."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from sost_jax.config import load_config, validate  # noqa: E402
from sost_jax.mock.survey import make_mock_survey  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Identical train steps compiled by several tests (and CI reruns) load from this cache.
jax.config.update(
    "jax_compilation_cache_dir",
    os.path.join(os.path.expanduser("~"), ".cache", "sost-jax-tests", "xla"),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
jax.config.update("jax_numpy_dtype_promotion", "strict")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real spectra beside the project (../shared/data); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


TINY_GRID = ["mock.grid.teff_step=1500.0", "mock.grid.logg_step=2.5", "mock.grid.feh_step=1.5"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny config pointed at a tiny mock survey."""
    root = tmp_path_factory.mktemp("tinymock")
    config = load_config("configs/tiny.py", TINY_GRID)
    mock = validate(config).mock
    make_mock_survey(root, mock, validate(config).preprocess, 48, 48, 4, progress=False)
    config.train.synthetic_store = str(root / "synthetic")
    config.train.observed_store = str(root / "observed")
    return config


def tiny_batch(config, seed=0):
    """Four spectra of each domain of the tiny mock, from row ``seed`` on, as a batch."""
    import numpy as np

    from sost_jax.data.store import PreparedStore

    a = PreparedStore(config.train.synthetic_store).read(np.arange(seed, seed + 4))
    b = PreparedStore(config.train.observed_store).read(np.arange(seed, seed + 4))
    return {"x_a": a["flux"], "w_a": a["weight"], "x_b": b["flux"], "w_b": b["weight"]}
