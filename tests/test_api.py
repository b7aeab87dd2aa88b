"""The Python API for users' own spectra: specutils spectra or arrays in, a table out."""

from dataclasses import replace
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import InverseVariance, StdDevUncertainty

from sost_jax.config import load_config, validate
from sost_jax.data.io import read_spectrum
from sost_jax.data.prepare import prepare_arrays
from sost_jax.errors import InputError
from sost_jax.inference.api import as_arrays, parameterise
from sost_jax.inference.catalogue import read_catalogue
from sost_jax.inference.estimate import ESTIMATE_COLUMNS, InferSettings
from sost_jax.inference.fit.stage import FIT_COLUMNS
from sost_jax.inference.runner import infer_files, infer_store
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


DR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "lamost_dr10"


def test_the_api_on_the_lamost_dr10_files_equals_the_command_line(setup, tmp_path, monkeypatch):
    """The 25 real LAMOST DR10 spectra (rest frame from their headers' Z): the API's rows,
    written to no file, are the command line's (`infer_files`, which `sost-jax infer`
    runs)."""
    paths = sorted(DR10.glob("*.fits")) if DR10.is_dir() else []
    if not paths:
        pytest.skip("../shared/data/lamost_dr10 is absent")
    spectra, ids = [], []
    for path in paths:
        s = read_spectrum(path)
        spectra.append(
            Spectrum(
                spectral_axis=s.wave * u.AA,
                flux=s.flux * u.Unit("1e-17 erg s-1 cm-2 AA-1"),
                uncertainty=InverseVariance(np.where(s.mask, 0.0, s.ivar)),
                redshift=s.meta["z"],
            )
        )
        ids.append(s.meta["id"])
    monkeypatch.chdir(tmp_path)
    table = parameterise(spectra, setup["library"], config=TINY, ids=ids)
    assert not any(tmp_path.iterdir())  # nothing written
    settings = validate(setup["config"])
    infer = replace(settings.infer, method="fit")  # parameterise's default
    out = infer_files(
        paths, setup["library"], tmp_path / "c", settings.preprocess, infer, progress=False
    )
    cat = read_catalogue(out["catalogue"])
    assert len(table) == len(paths) == out["n_rows"] and list(table["id"]) == list(cat["id"])
    columns = [*ESTIMATE_COLUMNS, *FIT_COLUMNS]
    assert set(columns) <= set(table.colnames) & set(cat)
    for name in columns:
        np.testing.assert_allclose(
            np.asarray(table[name], np.float64), cat[name], rtol=1e-5, atol=1e-3, err_msg=name
        )
