"""Template matching: matrix-form chi2 against a direct loop, top-k, sharding, estimates, flags,
and streaming from a prepared store."""

import itertools

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

from sost_jax.data.store import PreparedStore, StoreWriter
from sost_jax.inference.flags import MatchFlag
from sost_jax.inference.grid_estimate import estimate, label_grid
from sost_jax.inference.matching import chi2_matrix, make_bank, make_matcher, match

P = 96


def _targets(rng, n, p=P, masked=0.3):
    """Normalised-looking flux, inverse variances of S/N ~ 20-100, ~30 % masked pixels."""
    flux = (1 + 0.1 * rng.standard_normal((n, p))).astype(np.float32)
    weight = rng.uniform(400, 1e4, (n, p)).astype(np.float32)
    weight[rng.uniform(size=(n, p)) < masked] = 0
    return flux, weight


def _direct_chi2(obs, weight, templates, free_scale):
    """sum_p w (o - a S)^2 by a loop over (n, t) in float64."""
    o, w, s = (np.asarray(x, np.float64) for x in (obs, weight, templates))
    chi2 = np.empty((o.shape[0], s.shape[0]))
    scale = np.ones_like(chi2)
    for n, t in itertools.product(range(o.shape[0]), range(s.shape[0])):
        a = (w[n] * o[n] * s[t]).sum() / (w[n] * s[t] ** 2).sum() if free_scale else 1.0
        chi2[n, t] = (w[n] * (o[n] - a * s[t]) ** 2).sum()
        scale[n, t] = a
    return chi2, scale


def _grid_library(p=P, seed=1):
    """Templates on a regular (Teff, log g, [Fe/H]) grid: 5 x 4 x 4 = 80, smooth in labels."""
    teff = np.arange(4000.0, 6001.0, 500.0)
    logg = np.arange(1.0, 4.1, 1.0)
    feh = np.arange(-1.5, 0.1, 0.5)
    labels = np.array(list(itertools.product(teff, logg, feh)), np.float32)
    x = np.linspace(0, 1, p)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.05, 0.95, 12)
    response = rng.normal(0, 1, (12, 3))
    scaled = (labels - labels.mean(0)) / labels.std(0)
    depth = 0.3 / (1 + np.exp(-(scaled @ response.T)))  # [T, 12] line depths in (0, 0.3)
    lines = np.exp(-0.5 * ((x[None, :] - centres[:, None]) / 0.02) ** 2)  # [12, P]
    templates = (1 - depth @ lines - 0.02 * scaled[:, :1] * x[None, :]).astype(np.float32)
    return templates, labels


@pytest.mark.parametrize("free_scale", [False, True])
@pytest.mark.parametrize("centred", [False, True])
def test_matrix_chi2_equals_direct_loop_with_masks(free_scale, centred):
    rng = np.random.default_rng(0)
    obs, weight = _targets(rng, 7)
    templates = (1 + 0.1 * rng.standard_normal((11, P))).astype(np.float32)
    ref, ref_scale = _direct_chi2(obs, weight, templates, free_scale)
    if centred:
        bank = make_bank(templates)
        args = (obs - np.asarray(bank.offset)[None], weight, bank.flux, bank.flux_sq)
        kwargs = {"offset": bank.offset}
    else:
        args, kwargs = (obs, weight, templates), {}
    chi2, scale = chi2_matrix(*args, free_scale=free_scale, return_scale=True, **kwargs)
    assert chi2.dtype == np.float32 and chi2.shape == (7, 11)
    np.testing.assert_allclose(chi2, ref, rtol=2e-5, atol=1e-5 * ref.max())
    np.testing.assert_allclose(scale, ref_scale, rtol=1e-5)


def test_masked_pixels_are_ignored_even_when_their_flux_is_nan():
    rng = np.random.default_rng(2)
    obs, weight = _targets(rng, 4)
    templates = (1 + 0.1 * rng.standard_normal((5, P))).astype(np.float32)
    ref, _ = _direct_chi2(obs, weight, templates, False)
    obs[weight == 0] = np.nan
    got = match(obs, weight, templates, k=5)
    np.testing.assert_allclose(got["top_chi2"], np.sort(ref, axis=1), rtol=1e-5)
    np.testing.assert_array_equal(got["n_good"], (weight > 0).sum(1))


def test_free_scale_recovers_a_scaled_template():
    templates, _ = _grid_library()
    obs = 0.7 * templates[[3, 40]]
    got = match(obs, np.full_like(obs, 1e4), templates, k=3, free_scale=True)
    np.testing.assert_array_equal(got["top_index"][:, 0], [3, 40])
    np.testing.assert_allclose(got["top_scale"][:, 0], 0.7, rtol=1e-5)
    assert np.all(got["top_chi2"][:, 0] < 1e-2 * got["top_chi2"][:, 1])


def test_top_k_equals_numpy_argsort():
    rng = np.random.default_rng(3)
    obs, weight = _targets(rng, 9)
    templates = (1 + 0.1 * rng.standard_normal((40, P))).astype(np.float32)
    ref, _ = _direct_chi2(obs, weight, templates, False)
    got = match(obs, weight, templates, k=6)
    order = np.argsort(ref, axis=1)[:, :6]
    np.testing.assert_array_equal(got["top_index"], order)
    np.testing.assert_allclose(got["top_chi2"], np.take_along_axis(ref, order, 1), rtol=1e-5)
    with pytest.raises(ValueError, match="k = 41"):
        match(obs, weight, templates, k=41)


@pytest.mark.parametrize("n", [10, 8])
def test_sharded_over_four_devices_equals_one_device(n):
    assert len(jax.devices()) == 4
    templates, labels = _grid_library()
    rng = np.random.default_rng(4)
    obs = templates[rng.integers(0, len(templates), n)] + 0.01 * rng.standard_normal((n, P))
    weight = np.full((n, P), 1e4, np.float32)
    obs = obs.astype(np.float32)
    one = make_matcher(templates, labels, k=5, mesh=Mesh(np.array(jax.devices()[:1]), ("data",)))
    four = make_matcher(templates, labels, k=5)
    device_out, rows = four.dispatch(obs, weight)
    assert rows == n and len(device_out["teff"].sharding.device_set) == 4
    a, b = one(obs, weight), four(obs, weight)
    assert a.keys() == b.keys() and a["teff"].shape == (n,)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key)


def test_sharded_matcher_needs_no_communication_and_no_full_sort():
    templates, labels = _grid_library()  # 80 templates
    matcher = make_matcher(templates, labels, k=4)
    obs = np.ones((8, P), np.float32)
    x = jax.make_array_from_process_local_data(matcher.data, obs)
    text = matcher._match.lower(x, x, matcher.bank).compile().as_text()
    for collective in ("all-gather", "all-reduce", "all-to-all", "collective-permute"):
        assert collective not in text
    # top_k stays a partial selection: no sort of each device's [2, 80] chi2 block.
    assert not [line for line in text.splitlines() if " sort(" in line and ",80]" in line]


def test_label_grid_steps():
    labels = np.array([[4000, 1.0, 0.0], [4100, 1.5, 0.0], [4350, 2.5, 0.0]], np.float32)
    low, high, step = label_grid(labels)
    np.testing.assert_array_equal(low, [4000, 1.0, 0.0])
    np.testing.assert_array_equal(high, [4350, 2.5, 0.0])
    np.testing.assert_array_equal(step, [100, 0.5, np.inf])


def test_estimate_recovers_grid_labels_of_noisy_templates():
    templates, labels = _grid_library()
    rng = np.random.default_rng(5)
    obs = templates + 0.001 * rng.standard_normal(templates.shape).astype(np.float32)
    weight = np.full_like(obs, 1e6)
    found = match(obs, weight, templates, k=8)
    est = estimate(found["top_chi2"], found["top_index"], labels, found["n_good"], P)
    got = np.stack([est["teff"], est["logg"], est["feh"]], axis=1)
    step = np.array([500, 1.0, 0.5])
    assert np.all(np.abs(got - labels) < 0.05 * step)
    np.testing.assert_array_equal(est["best_index"], np.arange(len(labels)))
    np.testing.assert_allclose(est["chi2_reduced"], est["chi2_best"] / (P - 3))
    # Interior templates are clean; the others are on a face of the grid.
    low, high = labels.min(0), labels.max(0)
    edge = np.any((labels == low) | (labels == high), axis=1)
    flags = est["flags"]
    assert np.all((flags & MatchFlag.EDGE).astype(bool) == edge)
    assert np.all(flags[~edge] == MatchFlag.NONE) and (~edge).sum() == 3 * 2 * 2


def test_estimate_follows_the_two_best_rule_and_likelihood_spread():
    templates, labels = _grid_library()
    rng = np.random.default_rng(6)
    mix = 0.6 * templates[30] + 0.4 * templates[31]
    obs = (mix + 0.02 * rng.standard_normal((5, P))).astype(np.float32)
    weight = np.full_like(obs, 2500.0)
    found = {k: np.asarray(v) for k, v in match(obs, weight, templates, k=6).items()}
    est = estimate(found["top_chi2"], found["top_index"], labels, found["n_good"], P)
    c, lab = found["top_chi2"].astype(np.float64), labels[found["top_index"]]
    inv = 1 / c[:, :2]
    rule = (inv[:, :, None] * lab[:, :2]).sum(1) / inv.sum(1)[:, None]
    s = np.maximum(c[:, 0] / (P - 3), 1)
    like = np.exp(-(c - c[:, :1]) / (2 * s[:, None]))
    like /= like.sum(1, keepdims=True)
    mean = (like[:, :, None] * lab).sum(1)
    variance = (like[:, :, None] * (lab - mean[:, None]) ** 2).sum(1)
    step = np.array([500, 1.0, 0.5])  # the grid's; its discreteness adds step^2 / 12
    spread = np.sqrt(variance + step**2 / 12)
    for i, name in enumerate(["teff", "logg", "feh"]):
        np.testing.assert_allclose(est[name], rule[:, i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(est[f"{name}_err"], spread[:, i], rtol=1e-4, atol=1e-5)
    # cell sizes given for a library drawn inside cells replace the grid's steps
    cells = (150.0, 0.25, 0.15)
    est = estimate(
        found["top_chi2"], found["top_index"], labels, found["n_good"], P, label_steps=cells
    )
    spread = np.sqrt(variance + np.array(cells) ** 2 / 12)
    np.testing.assert_allclose(est["logg_err"], spread[:, 1], rtol=1e-4, atol=1e-5)


def test_flags_no_data_poor_fit_and_few_pixels():
    templates, labels = _grid_library()
    rng = np.random.default_rng(7)
    interior = 37  # Teff 5000 K, log g 2, [Fe/H] -1: inside the grid
    assert not np.any((labels[interior] == labels.min(0)) | (labels[interior] == labels.max(0)))
    obs = np.repeat(templates[interior : interior + 1], 4, axis=0)
    weight = np.full_like(obs, 1e4)
    weight[0] = 0  # no data
    obs[1] += 0.1 * rng.standard_normal(P).astype(np.float32)  # noise far above 1 / sqrt(w)
    weight[2, : int(0.6 * P)] = 0  # 40 % of pixels left
    found = match(obs, weight, templates, k=4)
    est = estimate(**found_args(found), template_labels=labels, n_pixels=P)
    est = {key: np.asarray(value) for key, value in est.items()}
    flags = est["flags"]
    assert flags[0] & MatchFlag.NO_DATA and flags[0] & MatchFlag.FEW_PIXELS
    assert not flags[0] & MatchFlag.EDGE
    for key in ("teff", "logg", "feh", "teff_err", "chi2_best", "chi2_reduced"):
        assert np.isnan(est[key][0]), key
    assert est["best_index"][0] == -1
    assert flags[1] & MatchFlag.POOR_FIT and est["chi2_reduced"][1] > 3
    assert flags[2] == MatchFlag.FEW_PIXELS
    assert flags[3] == MatchFlag.NONE and est["best_index"][3] == interior


def found_args(found):
    return {key: found[key] for key in ("top_chi2", "top_index", "n_good")}


def test_inferring_a_store_equals_matching_its_arrays(tmp_path):
    """The path users run (`infer_store`: parts, resumable catalogue) against `match` and
    `estimate` on the whole array at once."""
    from sost_jax.inference.catalogue import read_catalogue
    from sost_jax.inference.estimate import InferSettings
    from sost_jax.inference.runner import infer_store
    from sost_jax.library.templates import Library

    templates, labels = _grid_library()
    rng = np.random.default_rng(8)
    n = 13
    obs = templates[rng.integers(0, len(templates), n)] + 0.01 * rng.standard_normal((n, P))
    obs, weight = obs.astype(np.float32), rng.uniform(5e3, 2e4, (n, P)).astype(np.float32)
    weight[3] = 0
    wave = np.linspace(4000, 5000, P)
    writer = StoreWriter(tmp_path / "store", wave, {"source": "test"}, n_shards=2)
    ids = np.array([f"t{i}" for i in range(n)])
    for shard, rows in enumerate([slice(0, 7), slice(7, n)]):
        empty = np.full((obs[rows].shape[0], 3), np.nan, np.float32)
        writer.write_shard(shard, obs[rows], weight[rows], empty, {"id": ids[rows]})
    store = PreparedStore(tmp_path / "store")
    library = Library(wave, templates, labels, {"kind": "test"})

    settings = InferSettings(chunk_size=5, k=6)
    summary = infer_store(store, library, tmp_path / "out", settings, progress=False)
    got = read_catalogue(summary["catalogue"])
    found = match(obs, weight, templates, k=6)
    steps = (500.0, 1.0, 0.5)  # the grid's spacings, which infer_store finds itself
    ref = estimate(**found_args(found), template_labels=labels, n_pixels=P, label_steps=steps)
    np.testing.assert_array_equal(got["id"].astype(str), ids)
    np.testing.assert_array_equal(got["n_good"], found["n_good"])
    for key, value in ref.items():
        np.testing.assert_allclose(got[key], value, rtol=2e-5, atol=2e-6, err_msg=key)
    assert got["flags"][3] & MatchFlag.NO_DATA


def test_aligned_chunks_are_matched_in_place_and_others_alike():
    """A full chunk in 64-byte-aligned memory is handed to JAX as it is, which on CPUs uses
    its memory without a copy; an unaligned or short one is copied once; one answer."""
    from sost_jax.inference.matching import _padded
    from sost_jax.runtime.memory import aligned_empty

    rng = np.random.default_rng(3)
    templates = rng.normal(1, 0.1, (20, 64)).astype(np.float32)
    labels = np.stack([np.linspace(4000, 6000, 20), np.linspace(1, 5, 20), np.zeros(20)], 1)
    matcher = make_matcher(templates, labels, k=3)
    rows = [1, 3, 5, 7, 9, 11, 13, 15]
    obs = aligned_empty((8, 64))
    obs[:] = templates[rows] + rng.normal(0, 0.01, (8, 64))
    weight = aligned_empty((8, 64))
    weight[:] = 100.0
    assert obs.ctypes.data % 64 == 0 and _padded(obs, 8) is obs
    placed = jax.make_array_from_process_local_data(matcher.data, obs)
    first = min(placed.addressable_shards, key=lambda s: s.index[0].start or 0)
    assert first.data.unsafe_buffer_pointer() == obs.ctypes.data  # no copy on this backend
    unaligned = np.empty(obs.size + 1, np.float32)[1:].reshape(obs.shape)
    unaligned[:] = obs
    copied = _padded(unaligned, 12)
    assert copied.ctypes.data % 64 == 0 and not copied[8:].any()
    got, again = matcher(obs, weight, pad_to=8), matcher(unaligned, np.array(weight), pad_to=12)
    np.testing.assert_array_equal(got["top_index"], again["top_index"])
    np.testing.assert_array_equal(got["top_index"][:, 0], rows)
