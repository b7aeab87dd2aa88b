"""Grid readers: ck04 tables, ASCII files (+ CSV index), npz/HDF5 round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fixtures_io import CK04_DIR, needs

from sost_jax.data.io import (
    read_array_grid,
    read_ascii_grid,
    read_ascii_grid_index,
    read_ck04,
    write_array_grid,
)
from sost_jax.data.spectra import Grid, ReadError


@needs(CK04_DIR)
def test_ck04_subset_params_and_skipped_models() -> None:
    grid = read_ck04(CK04_DIR, teff_range=(9500, 10000), feh_range=(0.0, 0.0))
    # ckp00_9500/9750/10000: g00-g15 not computed -> 7 models each
    assert grid.params.shape == (21, 3) and grid.flux.shape == (21, 1221)
    assert grid.wave.shape == (1221,) and grid.flux.dtype == np.float32
    assert set(grid.params[:, 0]) == {9500.0, 9750.0, 10000.0}
    assert grid.params[:, 1].min() == 2.0 and grid.params[:, 1].max() == 5.0
    assert np.all(grid.params[:, 2] == 0.0)
    assert np.all(grid.flux.max(axis=1) > 0)
    assert grid.meta["medium"] == "vacuum"
    table = fits.getdata(CK04_DIR / "ckp00" / "ckp00_10000.fits", 1)
    row = np.flatnonzero((grid.params[:, 0] == 10000) & (grid.params[:, 1] == 4.5))[0]
    assert np.array_equal(grid.flux[row], table["g45"])


@needs(CK04_DIR)
def test_ck04_metallicity_from_header_and_ranges() -> None:
    grid = read_ck04(
        CK04_DIR,
        teff_range=(5000, 5000),
        logg_range=(4.0, 4.5),
        feh_range=(-2.5, 0.5),
        wave_range=(3900, 8700),
    )
    assert sorted(set(grid.params[:, 2])) == [-2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.2, 0.5]
    assert grid.params.shape == (16, 3)
    assert 3900 <= grid.wave[0] and grid.wave[-1] <= 8700 and len(grid.wave) == 240
    assert np.all(np.diff(grid.params[:, 2]) >= 0)  # sorted by [M/H] first


def test_ck04_empty_root(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="no ck04 table"):
        read_ck04(tmp_path)


def _write_ascii(path: Path, wave: np.ndarray, flux: np.ndarray) -> Path:
    np.savetxt(path, np.column_stack([wave, flux]), header="wavelength flux")
    return path


def test_ascii_grid_and_index(tmp_path: Path) -> None:
    wave = np.linspace(4000, 5000, 11)
    paths = [_write_ascii(tmp_path / f"m{i}.txt", wave, wave * i) for i in range(1, 4)]
    params = np.array([[5000, 4.0, 0.0], [5500, 4.5, -0.5], [6000, 3.5, 0.2]])
    grid = read_ascii_grid(paths, params, medium="air")
    assert np.array_equal(grid.wave, wave) and grid.flux.shape == (3, 11)
    assert np.allclose(grid.flux[2], 3 * wave) and grid.meta["medium"] == "air"

    index = tmp_path / "index.csv"
    lines = ["path,teff,logg,feh"]
    lines += [f"{p.name},{t},{g},{f}" for p, (t, g, f) in zip(paths, params, strict=True)]
    index.write_text("\n".join(lines) + "\n")
    from_index = read_ascii_grid_index(index)
    assert np.array_equal(from_index.params, params)
    assert np.array_equal(from_index.flux, grid.flux)


def test_ascii_grid_refuses_differing_axes(tmp_path: Path) -> None:
    a = _write_ascii(tmp_path / "a.txt", np.linspace(4000, 5000, 11), np.ones(11))
    b = _write_ascii(tmp_path / "b.txt", np.linspace(4000, 5001, 11), np.ones(11))
    with pytest.raises(ReadError, match="b.txt.*differs.*a.txt"):
        read_ascii_grid([a, b], np.zeros((2, 3)))


def test_ascii_index_missing_column(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("path,teff,logg\nx.txt,5000,4.0\n")
    with pytest.raises(ReadError, match="index.csv.*feh"):
        read_ascii_grid_index(index)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_array_grid_round_trip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(3)
    grid = Grid(
        params=np.array([[5000.0, 4.0, 0.0], [6000.0, 4.5, -1.0]]),
        wave=np.linspace(4000, 6000, 50),
        flux=rng.random((2, 50)).astype(np.float32),
        meta={"medium": "vacuum", "source": "test", "where": tmp_path},
    )
    path = tmp_path / f"grid{suffix}"
    write_array_grid(path, grid)
    back = read_array_grid(path)
    assert np.array_equal(back.params, grid.params)
    assert np.array_equal(back.wave, grid.wave)
    assert np.array_equal(back.flux, grid.flux) and back.flux.dtype == np.float32
    assert back.meta["medium"] == "vacuum" and back.meta["source"] == "test"
    assert back.meta["where"] == str(tmp_path) and back.meta["path"] == str(path)


def test_array_grid_bad_shapes(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, params=np.zeros((2, 3)), wavelength=np.zeros(5), flux=np.zeros((3, 5)))
    with pytest.raises(ReadError, match="bad.npz.*shapes"):
        read_array_grid(path)
    np.savez(path, params=np.zeros((2, 3)), flux=np.zeros((2, 5)))
    with pytest.raises(ReadError, match="missing dataset.*wavelength"):
        read_array_grid(path)
