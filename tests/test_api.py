"""The Python API for users' own spectra: specutils spectra or arrays in, a table out."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import InverseVariance, StdDevUncertainty

from sost_jax.config import load_config, validate
from sost_jax.data.prepare import prepare_arrays
from sost_jax.errors import InputError
from sost_jax.inference.api import as_arrays, parameterise
from sost_jax.inference.catalogue import read_catalogue
from sost_jax.inference.estimate import InferSettings
from sost_jax.inference.runner import infer_store
from sost_jax.library.emulator import EmulatorSettings, train_emulator
from sost_jax.library.templates import Library, write_library
from sost_jax.mock import observed_spectra
from sost_jax.mock.params import grid_parameters

TINY = str(Path(__file__).resolve().parents[1] / "configs" / "tiny.py")
specutils = pytest.importorskip("specutils")  # in the dev extra: runs in CI
# specutils 2 renamed Spectrum1D to Spectrum (the old name warns); either is accepted
Spectrum = getattr(specutils, "Spectrum", None) or specutils.Spectrum1D


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny-grid library naming an emulator of its templates, and 6 observed spectra."""
    root = tmp_path_factory.mktemp("api")
    config = load_config("configs/tiny.py")
    settings = validate(config).preprocess
    params = grid_parameters(500.0, 1.0, 0.5, (4000.0, 7000.0), (1.0, 5.0), (-1.5, 0.5))
    mock = validate(config).mock
    spec = observed_spectra(params, settings.wave, mock, noiseless=True)
    store = prepare_arrays(
        root / "lib", settings.wave, spec["flux"], spec["ivar"], settings, params
    )
    data = store.read(np.arange(len(store)))
    emulator, _ = train_emulator(
        data["labels"],
        data["flux"],
        EmulatorSettings(hidden=(32,), activation="tanh", max_epochs=300, patience=300),
        wave=store.wave,
        progress=False,
    )
    meta = {"kind": "oracle", "fit_emulator": str(emulator.save(root / "emulator"))}
    library = write_library(
        root / "library.fits", Library(store.wave, data["flux"], data["labels"], meta)
    )
    rng = np.random.default_rng(1)
    truth = np.column_stack(
        [rng.uniform(4500, 6500, 6), rng.uniform(2, 4.5, 6), rng.uniform(-1, 0.2, 6)]
    )
    wave = np.linspace(3800.0, 9000.0, 3000)  # the observed pixels, not the library's
    obs = observed_spectra(truth, wave, mock, rng=rng, snr=80.0, rv=0.0)
    return {"library": library, "wave": wave, "obs": obs, "config": config, "root": root}


def test_arrays_and_specutils_spectra_give_the_same_table(setup):
    wave, obs = setup["wave"], setup["obs"]
    arrays = parameterise(
        (wave, obs["flux"], obs["ivar"]), setup["library"], config="configs/tiny.py", method="fit"
    )
    sigma = np.where(obs["ivar"] > 0, obs["ivar"], np.inf) ** -0.5
    spectrum = Spectrum(
        spectral_axis=wave * u.AA,
        flux=obs["flux"] * u.Unit("erg s-1 cm-2 AA-1"),
        uncertainty=StdDevUncertainty(sigma),
    )
    table = parameterise(spectrum, setup["library"], config="configs/tiny.py", method="fit")
    assert len(table) == len(arrays) == 6
    for name in ("teff", "logg", "feh", "rv", "teff_err"):
        np.testing.assert_allclose(table[name], arrays[name], rtol=1e-4, atol=1e-3)
    assert table["teff"].unit == u.K and table["logg"].unit == u.dex
    assert table["rv"].unit == u.km / u.s
    assert "ref_teff" not in table.colnames and table.meta["failures"] == []
    # a list of single spectra, wavelengths in nm, is the same as the 2-D spectrum
    singles = [
        Spectrum(
            spectral_axis=(wave / 10) * u.nm,
            flux=obs["flux"][i] * u.Jy,
            uncertainty=InverseVariance(obs["ivar"][i]),
        )
        for i in range(6)
    ]
    listed = parameterise(singles, setup["library"], config="configs/tiny.py", method="fit")
    np.testing.assert_allclose(listed["teff"], arrays["teff"], rtol=1e-4)


@pytest.mark.parametrize("method", ["grid", "fit"])
def test_the_api_matches_the_command_line_path(setup, tmp_path, method):
    wave, obs = setup["wave"], setup["obs"]
    table = parameterise(
        (wave, obs["flux"], obs["ivar"]), setup["library"], config="configs/tiny.py", method=method
    )
    settings = validate(setup["config"]).preprocess
    store = prepare_arrays(tmp_path / "s", wave, obs["flux"], obs["ivar"], settings)
    infer = InferSettings.from_dict({**InferSettings().to_dict(), "method": method})
    cat = read_catalogue(
        infer_store(store, setup["library"], tmp_path / "c", infer, progress=False)["catalogue"]
    )
    assert set(table.colnames) == set(cat) - {"ref_teff", "ref_logg", "ref_feh"}
    for name in table.colnames:
        column = np.asarray(table[name])
        if column.dtype.kind in "fiu":
            np.testing.assert_allclose(column, cat[name], rtol=1e-5, atol=1e-3, err_msg=name)
        else:
            assert list(column) == list(cat[name]), name


def test_the_api_writes_no_file(setup, tmp_path, monkeypatch):
    import tempfile

    from sost_jax.data import store

    def no_store(*args, **kwargs):
        raise AssertionError("parameterise wrote a store")

    monkeypatch.setattr(store.StoreWriter, "__init__", no_store)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path / "cwd")
    wave, obs = setup["wave"], setup["obs"]
    table = parameterise((wave, obs["flux"], obs["ivar"]), setup["library"], config=TINY)
    assert len(table) == 6
    assert not any((tmp_path / "tmp").iterdir()) and not any((tmp_path / "cwd").iterdir())


def test_unusable_spectra_are_listed_not_raised(setup):
    wave, obs = setup["wave"], setup["obs"]
    ivar = obs["ivar"].copy()
    ivar[2] = 0.0  # nothing usable
    mask = np.zeros(obs["flux"].shape, bool)
    mask[4, :2000] = True  # most of the library's range masked
    spectrum = Spectrum(
        spectral_axis=wave * u.AA,
        flux=obs["flux"] * u.Jy,
        uncertainty=InverseVariance(ivar),
        mask=mask,
    )
    table = parameterise(spectrum, setup["library"], config="configs/tiny.py", ids=list("abcdef"))
    failed = {i for i, _ in table.meta["failures"]}
    assert "c" in failed and "e" in failed
    assert list(table["id"]) == [i for i in "abcdef" if i not in failed]
    with pytest.raises(InputError, match="specutils"):
        parameterise([1, 2, 3], setup["library"])
    with pytest.raises(InputError, match="arrays must be"):
        as_arrays((wave[:10], obs["flux"], obs["ivar"]))
