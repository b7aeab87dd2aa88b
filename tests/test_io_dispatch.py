"""read_spectrum picks the right reader; read_many never stops on a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fixtures_io import (
    LAMOST_DIR,
    MILES_DIR,
    needs,
    write_image,
    write_lamost_dr5,
    write_lamost_dr14,
)

from sost_jax.data.io import read_lamost, read_many, read_spectrum


def test_dispatch_on_layout(tmp_path: Path) -> None:
    dr5 = read_spectrum(write_lamost_dr5(tmp_path / "a.fits"))
    dr14 = read_spectrum(write_lamost_dr14(tmp_path / "b.fits"))
    cards = {"CRVAL1": 4000.0, "CDELT1": 1.0}
    plain = read_spectrum(write_image(tmp_path / "c.fits", np.ones(10), cards), medium="air")
    assert dr5.meta["obsid"] == dr14.meta["obsid"] == 123456
    assert "ivar_known" in plain.meta and plain.meta["medium"] == "air"


@needs(LAMOST_DIR)
@needs(MILES_DIR)
def test_dispatch_real_files() -> None:
    lamost = sorted(LAMOST_DIR.glob("*.fits"))[0]
    spec = read_spectrum(lamost)
    assert np.array_equal(spec.flux, read_lamost(lamost).flux)
    miles = read_spectrum(MILES_DIR / "MILES_res2.50_star_m0002V.fits")
    assert miles.meta["miles_id"] == 2


def test_read_many_collects_failures(tmp_path: Path) -> None:
    good = write_lamost_dr5(tmp_path / "good.fits")
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[:5000])
    noise = tmp_path / "noise.fits"
    noise.write_bytes(b"\x00" * 3000)
    paths = [good, truncated, tmp_path / "absent.fits", noise, good]
    spectra, failures = read_many(paths)
    assert len(spectra) == 2
    assert [p for p, _ in failures] == [str(truncated), str(tmp_path / "absent.fits"), str(noise)]
    assert all(path in reason for path, reason in failures)


def test_read_many_survives_reader_bugs(tmp_path: Path) -> None:
    def broken(path: object) -> object:
        raise KeyError("oops")

    spectra, failures = read_many([tmp_path / "x.fits"], reader=broken)  # type: ignore[arg-type]
    assert spectra == [] and failures[0][1].startswith("KeyError")
