"""Built-in table of the strong absorption features of FGKM spectra, for the mock survey.

Physical model
--------------
The mock is not a radiative-transfer code; it only has to look like a low-resolution stellar
spectrum and to carry a smooth, distinct, learnable imprint of each label. A spectrum on the
internal log-lambda grid is

    flux(lambda) = continuum(lambda) * exp(-tau(lambda)),
    tau[N, P] = strengths[N, F] @ profiles[F, P],

where each of the F *components* of the table has a fixed profile (peak 1) and a strength
(the peak optical depth before the line-spread function) that is an analytic function of
the labels:

    S = amp * exp(-0.5 ((Teff - t_peak) / t_width)**2)       (temperature window)
            * sigmoid((t_cut - Teff) / t_cut_scale)         (cut-off, e.g. TiO below ~4100 K)
            * exp(g_coef * (logg - 4))                      (gravity)
            * 10**(feh_coef * [Fe/H])                       (abundance).

Profile kinds:

``gauss``
    Line core: Gaussian of standard deviation ``width`` [Å].
``lorentz``
    Damping / pressure wings: Lorentzian of half width ``width`` [Å]. Strong lines (Balmer,
    Ca II, Ca I 4227, Mg b, Na D) are a ``gauss`` core plus a ``lorentz`` wing component,
    the wing's strength rising with log g, so the lines of dwarfs have broader wings.
``band``
    Molecular band: optical depth jumps at the head ``center`` and decays exponentially
    with scale ``width`` [Å] over ``|extent|`` Å, towards the red when ``extent > 0``
    (TiO, CaH) and towards the blue when ``extent < 0`` (CH G band, CN, MgH).
``forest``
    Sum of many weak Gaussian lines (``forest_*`` arrays) that share one strength law; it
    gives the spectra their texture of blended metal lines. Lines flagged
    ``forest_observed_only`` are absent from the synthetic domain: they stand for the
    opacity that models miss.

Label imprints: Teff sets the continuum (Planck) and the balance between Balmer lines
(peaking near 9000 K), metal lines (rising towards cool stars) and molecular bands (TiO and
CaH only below ~4200 K); log g sets the Balmer and strong-line wings, the MgH and CaH bands
(strong in dwarfs), and the ionised lines, CN and the Ca II triplet (strong in giants);
[Fe/H] scales every metal line and band. Wavelengths are tabulated in air, as laboratory
lists give them, and converted to vacuum once (`sost_jax.data.preprocess.air_to_vac`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sost_jax.constants import C_KMS
from sost_jax.data.preprocess.wavelength import air_to_vac
from sost_jax.errors import InputError

__all__ = [
    "FeatureTable",
    "feature_strengths",
    "feature_table",
    "profile_matrix",
]

_INF = float("inf")


class FeatureTable(NamedTuple):
    """The built-in feature table; one entry per component, F in all.

    Attributes
    ----------
    names : tuple of str [F]
        Component names, e.g. ``"H_alpha_core"``, ``"TiO_7055"``.
    groups : tuple of str [F]
        Family: balmer, paschen, ca_hk, ca_triplet, ca_i, mg, na, k_i, o_i, ionised, fe_i,
        metal, molecule, forest.
    kinds : tuple of str [F]
        Profile kind: ``gauss``, ``lorentz``, ``band`` or ``forest``.
    center : float64 [F]
        Line centre or band head [Å, vacuum]; for the forest, the mean line wavelength.
    width : float64 [F]
        Gaussian sigma, Lorentzian half width or band decay length [Å]; 0 for the forest.
    extent : float64 [F]
        Band length [Å], > 0 degrading to the red, < 0 to the blue; 0 otherwise.
    amp, t_peak, t_width, t_cut, t_cut_scale, g_coef, feh_coef : float64 [F]
        Coefficients of the strength law (module docstring): amplitude (peak optical
        depth), temperature window centre and width [K], cut-off temperature and its scale
        [K] (``t_cut = inf``: no cut-off), gravity coefficient [1/dex], abundance
        coefficient.
    forest_center : float64 [L]
        Vacuum wavelengths of the forest lines [Å].
    forest_amp : float64 [L]
        Relative peak optical depth of each forest line.
    forest_width : float64 [L]
        Gaussian sigma of each forest line [Å].
    forest_row : int64 [L]
        Index of the ``forest`` component each line belongs to.
    forest_observed_only : bool [L]
        True for lines present only in the observed domain.
    """

    names: tuple[str, ...]
    groups: tuple[str, ...]
    kinds: tuple[str, ...]
    center: np.ndarray
    width: np.ndarray
    extent: np.ndarray
    amp: np.ndarray
    t_peak: np.ndarray
    t_width: np.ndarray
    t_cut: np.ndarray
    t_cut_scale: np.ndarray
    g_coef: np.ndarray
    feh_coef: np.ndarray
    forest_center: np.ndarray
    forest_amp: np.ndarray
    forest_width: np.ndarray
    forest_row: np.ndarray
    forest_observed_only: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of components F."""
        return len(self.names)


# Strength laws shared by families of lines: (t_peak, t_width, t_cut, t_cut_scale, g, feh).
_LAW_FE_LOW = (4000.0, 2300.0, _INF, 1.0, 0.0, 1.0)  # low-excitation neutral metal lines
_LAW_FE_HIGH = (5000.0, 2600.0, _INF, 1.0, 0.05, 1.0)  # higher-excitation neutral lines
_LAW_IONISED = (6300.0, 2300.0, _INF, 1.0, -0.35, 0.8)  # ionised lines, strong in giants
_LAW_CA_I = (4300.0, 2000.0, _INF, 1.0, 0.1, 0.8)
_LAW_TIO = (3000.0, 1500.0, 4000.0, 110.0, -0.1, 0.3)
_LAW_CAH = (3000.0, 1200.0, 4000.0, 150.0, 0.8, 0.2)

# fmt: off
# Strong lines with core and wing components, air wavelengths [Å]:
# (name, group, wavelengths, core sigma [Å], core amps, core law, wing gamma [Å], wing amps,
#  wing law)
_STRONG_LINES = [
    (
        "H_alpha", "balmer", [6562.80], 0.9, [3.0], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        6.0, [2.0], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "H_beta", "balmer", [4861.33], 0.65, [2.6], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        4.5, [2.0], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "H_gamma", "balmer", [4340.46], 0.6, [2.2], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        4.0, [1.8], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "H_delta", "balmer", [4101.74], 0.55, [2.0], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        3.6, [1.6], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "H_epsilon", "balmer", [3970.07], 0.55, [1.7], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        3.2, [1.4], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "H_8", "balmer", [3889.05], 0.5, [1.4], (9000.0, 2300.0, _INF, 1.0, 0.0, 0.0),
        3.0, [1.2], (9500.0, 2000.0, _INF, 1.0, 0.5, 0.0),
    ),
    (
        "Ca_II_K", "ca_hk", [3933.66], 0.6, [20.0], (4800.0, 3500.0, _INF, 1.0, 0.0, 0.3),
        1.5, [3.0], (4500.0, 2500.0, _INF, 1.0, 0.3, 0.5),
    ),
    (
        "Ca_II_H", "ca_hk", [3968.47], 0.6, [14.0], (4800.0, 3500.0, _INF, 1.0, 0.0, 0.3),
        1.5, [2.2], (4500.0, 2500.0, _INF, 1.0, 0.3, 0.5),
    ),
    (
        "Ca_II_8498", "ca_triplet", [8498.02], 0.6, [2.5], (5000.0, 3000.0, _INF, 1.0, -0.15, 0.3),
        1.2, [0.5], (5000.0, 2500.0, _INF, 1.0, -0.1, 0.3),
    ),
    (
        "Ca_II_8542", "ca_triplet", [8542.09], 0.6, [4.5], (5000.0, 3000.0, _INF, 1.0, -0.15, 0.3),
        1.2, [0.9], (5000.0, 2500.0, _INF, 1.0, -0.1, 0.3),
    ),
    (
        "Ca_II_8662", "ca_triplet", [8662.14], 0.6, [3.5], (5000.0, 3000.0, _INF, 1.0, -0.15, 0.3),
        1.2, [0.7], (5000.0, 2500.0, _INF, 1.0, -0.1, 0.3),
    ),
    (
        "Ca_I_4227", "ca_i", [4226.73], 0.45, [4.0], (3800.0, 1500.0, _INF, 1.0, 0.2, 0.7),
        1.0, [0.8], (3800.0, 1300.0, _INF, 1.0, 0.4, 0.7),
    ),
    (
        "Mg_b", "mg", [5167.32, 5172.68, 5183.60], 0.45, [2.0, 3.0, 4.0],
        (4200.0, 2000.0, _INF, 1.0, 0.1, 0.6),
        0.8, [0.5, 0.8, 1.0], (4200.0, 1600.0, _INF, 1.0, 0.5, 0.6),
    ),
    (
        "Na_D", "na", [5889.95, 5895.92], 0.45, [3.0, 2.4], (3800.0, 1600.0, _INF, 1.0, 0.2, 0.6),
        1.0, [0.8, 0.6], (3700.0, 1300.0, _INF, 1.0, 0.5, 0.6),
    ),
]

# Single Gaussian lines, air wavelengths: (name, group, wavelength [Å], amp, law).
_FE_I_STRONG = [4045.81, 4063.59, 4071.74, 4271.76, 4325.76, 4383.55, 4404.75, 5269.54, 5328.04]
_FE_I_MODERATE_LOW = [
    4132.06, 4143.87, 4202.03, 4250.79, 4260.47, 4307.90, 4415.12, 4461.65, 4528.61,
    4890.76, 4891.49, 4920.50, 4957.60, 5006.12, 5012.07, 5227.19, 5371.49, 5397.13,
    5405.77, 5429.70, 5446.92,
]
_FE_I_HIGH = [
    5615.64, 6136.62, 6191.56, 6230.72, 6252.56, 6393.60, 6400.00, 6494.98, 6677.99,
    7511.02, 8327.05, 8387.77, 8468.41, 8688.62,
]

# fmt: on


def _single_lines() -> list[tuple[str, str, float, float, tuple]]:
    lines: list[tuple[str, str, float, float, tuple]] = []
    for w in _FE_I_STRONG:
        lines.append((f"Fe_I_{w:.1f}", "fe_i", w, 1.6, _LAW_FE_LOW))
    for w in _FE_I_MODERATE_LOW:
        lines.append((f"Fe_I_{w:.1f}", "fe_i", w, 0.8, _LAW_FE_LOW))
    for w in _FE_I_HIGH:
        lines.append((f"Fe_I_{w:.1f}", "fe_i", w, 0.6, _LAW_FE_HIGH))
    for w, a in [(4077.71, 1.4), (4215.52, 1.0)]:
        lines.append((f"Sr_II_{w:.1f}", "ionised", w, a, (5500.0, 2000.0, _INF, 1.0, -0.4, 0.7)))
    for w, a in [(4554.03, 1.0), (6141.71, 0.6), (6496.90, 0.6)]:
        lines.append((f"Ba_II_{w:.1f}", "ionised", w, a, (5500.0, 2000.0, _INF, 1.0, -0.35, 0.6)))
    for w in [4923.93, 5018.44, 5169.03, 5316.61]:
        lines.append((f"Fe_II_{w:.1f}", "ionised", w, 0.7, _LAW_IONISED))
    for w in [4443.80, 4468.49, 4501.27]:
        lines.append((f"Ti_II_{w:.1f}", "ionised", w, 0.6, _LAW_IONISED))
    for w in [4030.75, 4033.06, 4034.48]:
        lines.append((f"Mn_I_{w:.1f}", "metal", w, 0.9, (4500.0, 2000.0, _INF, 1.0, 0.0, 0.9)))
    for w in [5206.04, 5208.42]:
        lines.append((f"Cr_I_{w:.1f}", "metal", w, 0.6, _LAW_FE_LOW))
    for w, a in [(4702.99, 0.6), (8806.76, 1.0)]:
        lines.append((f"Mg_I_{w:.1f}", "mg", w, a, (4500.0, 2200.0, _INF, 1.0, 0.3, 0.6)))
    for w in [4454.78, 6102.72, 6122.22, 6162.17, 6439.08, 6449.81]:
        lines.append((f"Ca_I_{w:.1f}", "ca_i", w, 0.55, _LAW_CA_I))
    for w, a in [(7664.90, 1.0), (7698.97, 0.8)]:
        lines.append((f"K_I_{w:.1f}", "k_i", w, a, (3500.0, 1000.0, _INF, 1.0, 0.4, 0.5)))
    for w in [7771.94, 7774.17, 7775.39]:
        lines.append((f"O_I_{w:.1f}", "o_i", w, 0.5, (7500.0, 1400.0, _INF, 1.0, -0.25, 0.4)))
    for w in [8467.25, 8502.48, 8545.38, 8598.39, 8665.02, 8750.47]:
        lines.append((f"Pa_{w:.1f}", "paschen", w, 0.8, (9000.0, 1500.0, _INF, 1.0, 0.0, 0.0)))
    return lines


# Molecular bands: (name, head [Å air], decay length [Å], extent [Å, sign = direction], amp,
# law).
_BANDS = [
    ("CH_G_band", 4313.0, 15.0, -28.0, 0.7, (5000.0, 1300.0, _INF, 1.0, 0.0, 0.5)),
    ("CN_4216", 4215.0, 40.0, -80.0, 0.25, (4500.0, 700.0, _INF, 1.0, -0.3, 0.4)),
    ("MgH_5211", 5211.0, 60.0, -250.0, 0.35, (3500.0, 1500.0, 5000.0, 250.0, 0.8, 0.5)),
    ("CaH_6382", 6382.0, 40.0, 80.0, 0.5, _LAW_CAH),
    ("CaH_6750", 6750.0, 60.0, 120.0, 0.4, _LAW_CAH),
    ("TiO_4762", 4761.0, 60.0, 190.0, 0.8, _LAW_TIO),
    ("TiO_4954", 4954.0, 80.0, 210.0, 1.1, _LAW_TIO),
    ("TiO_5168", 5167.0, 70.0, 200.0, 1.0, _LAW_TIO),
    ("TiO_5449", 5448.0, 80.0, 300.0, 1.1, _LAW_TIO),
    ("TiO_5862", 5847.0, 80.0, 250.0, 0.9, _LAW_TIO),
    ("TiO_6159", 6159.0, 90.0, 300.0, 1.5, _LAW_TIO),
    ("TiO_6651", 6651.0, 100.0, 300.0, 1.1, _LAW_TIO),
    ("TiO_7055", 7054.0, 120.0, 400.0, 1.8, _LAW_TIO),
    ("TiO_7591", 7589.0, 110.0, 400.0, 1.2, _LAW_TIO),
    ("TiO_8433", 8432.0, 120.0, 400.0, 0.9, _LAW_TIO),
]

# Forest families: (name, fraction of lines, law).
_FOREST_FAMILIES = [
    ("forest_neutral_low", 0.65, _LAW_FE_LOW),
    ("forest_neutral_high", 0.25, _LAW_FE_HIGH),
    ("forest_ionised", 0.10, _LAW_IONISED),
]


def _forest_lines(
    rng: np.random.Generator, n: int, wave_min: float, wave_max: float, amp_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random weak lines, denser in the blue (density ~ lambda**-3), log-uniform depths."""
    # Inverse-CDF sampling of p(lambda) ~ lambda**-3 on [wave_min, wave_max].
    u = rng.random(n)
    a, b = wave_min**-2, wave_max**-2
    center = (a + u * (b - a)) ** -0.5
    amp = amp_scale * np.exp(rng.uniform(np.log(0.15), np.log(1.5), n))
    family = rng.choice(len(_FOREST_FAMILIES), size=n, p=[f[1] for f in _FOREST_FAMILIES])
    return center, amp, family


def feature_table(
    n_forest: int = 600,
    forest_seed: int = 1234,
    n_missing: int = 0,
    missing_strength: float = 0.15,
    missing_seed: int = 0,
    line_sigma: float = 25.0,
    wave_range: tuple[float, float] = (3600.0, 9300.0),
) -> FeatureTable:
    """Build the feature table.

    Parameters
    ----------
    n_forest : int
        Number of weak lines in the forest shared by both domains.
    forest_seed : int
        Seed of the forest line list (positions, depths, families).
    n_missing : int
        Number of extra weak lines present only in the observed domain.
    missing_strength : float
        Typical peak optical depth of those lines.
    missing_seed : int
        Seed of the observed-only lines (the mock uses the gap seed).
    line_sigma : float
        Intrinsic Gaussian sigma of metal lines and the forest [km/s].
    wave_range : (float, float)
        Range over which forest lines are placed [Å, vacuum].

    Returns
    -------
    table : FeatureTable
    """
    rows: list[tuple] = []  # (name, group, kind, center_vac, width, extent, amp, law)
    for (
        name,
        group,
        waves,
        core_sigma,
        core_amps,
        core_law,
        gamma,
        wing_amps,
        wing_law,
    ) in _STRONG_LINES:
        for i, (w, a_core, a_wing) in enumerate(zip(waves, core_amps, wing_amps, strict=True)):
            suffix = f"_{i + 1}" if len(waves) > 1 else ""
            vac = float(air_to_vac(w))
            rows.append(
                (f"{name}{suffix}_core", group, "gauss", vac, core_sigma, 0.0, a_core, core_law)
            )
            rows.append(
                (f"{name}{suffix}_wing", group, "lorentz", vac, gamma, 0.0, a_wing, wing_law)
            )
    for name, group, w, amp, law in _single_lines():
        vac = float(air_to_vac(w))
        rows.append((name, group, "gauss", vac, vac * line_sigma / C_KMS, 0.0, amp, law))
    for name, head, length, extent, amp, law in _BANDS:
        rows.append((name, "molecule", "band", float(air_to_vac(head)), length, extent, amp, law))
    first_forest = len(rows)
    for name, _, law in _FOREST_FAMILIES:
        rows.append((name, "forest", "forest", 0.0, 0.0, 0.0, 1.0, law))

    rng = np.random.default_rng(forest_seed)
    c1, a1, f1 = _forest_lines(rng, n_forest, *wave_range, amp_scale=0.25)
    rng_missing = np.random.default_rng([missing_seed, 7])
    c2, a2, f2 = _forest_lines(rng_missing, n_missing, *wave_range, amp_scale=missing_strength)
    forest_center = np.concatenate([c1, c2])
    forest_row = first_forest + np.concatenate([f1, f2]).astype(np.int64)
    center = np.array([r[3] for r in rows])
    for j in range(len(_FOREST_FAMILIES)):
        sel = forest_row == first_forest + j
        center[first_forest + j] = forest_center[sel].mean() if sel.any() else 0.0

    law = np.array([r[7] for r in rows], dtype=np.float64)
    return FeatureTable(
        names=tuple(r[0] for r in rows),
        groups=tuple(r[1] for r in rows),
        kinds=tuple(r[2] for r in rows),
        center=center,
        width=np.array([r[4] for r in rows], dtype=np.float64),
        extent=np.array([r[5] for r in rows], dtype=np.float64),
        amp=np.array([r[6] for r in rows], dtype=np.float64),
        t_peak=law[:, 0],
        t_width=law[:, 1],
        t_cut=law[:, 2],
        t_cut_scale=law[:, 3],
        g_coef=law[:, 4],
        feh_coef=law[:, 5],
        forest_center=forest_center,
        forest_amp=np.concatenate([a1, a2]),
        forest_width=forest_center * line_sigma / C_KMS,
        forest_row=forest_row,
        forest_observed_only=np.concatenate(
            [np.zeros(n_forest, dtype=bool), np.ones(n_missing, dtype=bool)]
        ),
    )


def feature_strengths(params: np.ndarray, table: FeatureTable) -> np.ndarray:
    """Peak optical depth of every component for a batch of stars.

    Parameters
    ----------
    params : float [N, 3]
        Teff [K], log g [dex], [Fe/H] [dex].
    table : FeatureTable
        From `feature_table`.

    Returns
    -------
    strengths : float64 [N, F]
        Non-negative strengths (module docstring), smooth in all three labels.
    """
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != 3:
        raise InputError(f"params must have shape [N, 3], got {params.shape}")
    teff, logg, feh = (params[:, i : i + 1] for i in range(3))
    window = np.exp(-0.5 * ((teff - table.t_peak) / table.t_width) ** 2)
    # sigmoid((t_cut - Teff) / scale), written to stay finite for t_cut = inf.
    arg = np.clip((teff - table.t_cut) / table.t_cut_scale, -60.0, 60.0)
    cut = 1.0 / (1.0 + np.exp(arg))
    gravity = np.exp(table.g_coef * (logg - 4.0))
    abundance = 10.0 ** (table.feh_coef * feh)
    return table.amp * window * cut * gravity * abundance


def _gauss_into(out: np.ndarray, wave: np.ndarray, center: float, sigma: float, amp: float):
    lo, hi = np.searchsorted(wave, [center - 6.0 * sigma, center + 6.0 * sigma])
    if hi > lo:
        out[lo:hi] += amp * np.exp(-0.5 * ((wave[lo:hi] - center) / sigma) ** 2)


def profile_matrix(
    wave: np.ndarray, table: FeatureTable, forest_factors: np.ndarray | None = None
) -> np.ndarray:
    """Unit-peak optical-depth profile of every component on a wavelength grid.

    Parameters
    ----------
    wave : float [P]
        Increasing wavelength grid [Å, vacuum, rest frame], fine enough to sample the
        narrowest component (the mock uses a log-lambda grid of ~20 km/s pixels).
    table : FeatureTable
        From `feature_table`.
    forest_factors : float [L], optional
        Multiplier of each forest line's depth. Default: 1 for shared lines and 0 for the
        observed-only lines, i.e. the synthetic domain.

    Returns
    -------
    profiles : float32 [F, P]
        Row f is the profile of component f (peak 1, or the summed lines for a forest row).
    """
    wave = np.asarray(wave, dtype=np.float64)
    out = np.zeros((table.n_features, wave.size), dtype=np.float64)
    for f, kind in enumerate(table.kinds):
        c, w, ext = table.center[f], table.width[f], table.extent[f]
        if kind == "gauss":
            _gauss_into(out[f], wave, c, w, 1.0)
        elif kind == "lorentz":
            out[f] = 1.0 / (1.0 + ((wave - c) / w) ** 2)
        elif kind == "band":
            # Sharp head (a 1 Å logistic edge), exponential decay, soft end after |extent|.
            d = (wave - c) * np.sign(ext)
            head = 1.0 / (1.0 + np.exp(np.clip(-d / 1.0, -60.0, 60.0)))
            tail = 1.0 / (1.0 + np.exp(np.clip((d - abs(ext)) / (0.1 * abs(ext)), -60.0, 60.0)))
            out[f] = head * tail * np.exp(-np.clip(d, 0.0, None) / w)
    if forest_factors is None:
        forest_factors = (~table.forest_observed_only).astype(np.float64)
    forest_factors = np.asarray(forest_factors, dtype=np.float64)
    amps = table.forest_amp * forest_factors
    for c, s, a, f in zip(
        table.forest_center, table.forest_width, amps, table.forest_row, strict=True
    ):
        if a != 0.0:
            _gauss_into(out[f], wave, c, s, a)
    return out.astype(np.float32)
