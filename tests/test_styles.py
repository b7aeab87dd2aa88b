"""Style sources: shapes, determinism, fitted priors, save/load, spec strings, matching."""

import jax
import numpy as np
import pytest

from sost_jax.data.store import PreparedStore, StoreWriter
from sost_jax.library import styles as st

KEY = jax.random.PRNGKey(3)
D = 4


def _gaussian_samples(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    mean = np.array([0.5, -1.0, 2.0, 0.0])
    a = rng.normal(size=(D, D))
    cov = a @ a.T / D + 0.1 * np.eye(D)
    return rng.multivariate_normal(mean, cov, size=n), mean, cov


def _mixture(seed=1):
    return st.MixtureStyle(
        [0.3, 0.7],
        [[-5.0, -5.0, 0.0, 1.0], [5.0, 4.0, 0.0, -1.0]],
        [np.diag([0.5, 1.0, 0.2, 0.3]), np.diag([1.0, 0.3, 0.6, 0.2])],
    )


def _sources():
    samples, _, _ = _gaussian_samples(500)
    return [
        st.PriorStyle(D),
        st.FixedStyle([0.1, 0.2, 0.3, 0.4]),
        st.fit_gaussian(samples),
        _mixture(),
        st.CallableStyle(lambda key, n: jax.random.uniform(key, (n, D)), D, name="uniform"),
    ]


@pytest.mark.parametrize("source", _sources(), ids=lambda s: type(s).__name__)
def test_every_source_gives_n_by_d_float32_the_same_for_the_same_key(source):
    assert isinstance(source, st.StyleSource)
    a = np.asarray(source(KEY, 7))
    assert a.shape == (7, D) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, np.asarray(source(KEY, 7)))
    assert np.asarray(source(KEY, 0)).shape == (0, D)
    if not isinstance(source, st.FixedStyle):
        assert not np.array_equal(a, np.asarray(source(jax.random.PRNGKey(4), 7)))
    assert source.spec


def test_prior_is_standard_normal():
    s = np.asarray(st.PriorStyle(D)(KEY, 20_000), np.float64)
    np.testing.assert_allclose(s.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(np.cov(s, rowvar=False), np.eye(D), atol=0.04)


def test_fixed_style_repeats_its_vector():
    v = [0.1, -0.2, 0.3, 0.0]
    s = np.asarray(st.FixedStyle(v)(KEY, 3))
    np.testing.assert_array_equal(s, np.tile(np.float32(v), (3, 1)))
    with pytest.raises(ValueError, match="finite"):
        st.FixedStyle([0.0, np.nan])


def test_fitted_gaussian_recovers_mean_and_covariance_and_samples_like_them():
    x, mean, cov = _gaussian_samples()
    g = st.fit_gaussian(x)
    np.testing.assert_allclose(g.mean, mean, atol=0.05)
    np.testing.assert_allclose(g.cov, cov, atol=0.06)
    drawn = np.asarray(g(KEY, 20_000), np.float64)
    np.testing.assert_allclose(drawn.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(drawn, rowvar=False), cov, atol=0.08)


def test_mixture_em_recovers_two_well_separated_components():
    true = _mixture()
    x = np.asarray(true(KEY, 6000), np.float64)
    fit = st.fit_mixture(x, 2, seed=0)
    order = np.argsort(fit.means[:, 0])  # component at -5 first
    np.testing.assert_allclose(fit.weights[order], true.weights, atol=0.03)
    np.testing.assert_allclose(fit.means[order], true.means, atol=0.1)
    np.testing.assert_allclose(fit.covs[order], true.covs, atol=0.12)
    again = st.fit_mixture(x, 2, seed=0)
    np.testing.assert_array_equal(again.means, fit.means)
    # Samples land in both components in the fitted proportions.
    drawn = np.asarray(fit(KEY, 4000))
    assert abs((drawn[:, 0] > 0).mean() - 0.7) < 0.03


def test_gaussian_and_mixture_survive_save_and_load(tmp_path):
    g = st.fit_gaussian(_gaussian_samples(300)[0])
    m = _mixture()
    g.save(tmp_path / "g.npz")
    m.save(tmp_path / "m.prior")  # any file name
    g2 = st.GaussianStyle.load(tmp_path / "g.npz")
    m2 = st.load_prior(tmp_path / "m.prior")
    assert isinstance(m2, st.MixtureStyle)
    np.testing.assert_array_equal(g2.mean, g.mean)
    np.testing.assert_array_equal(g2.cov, g.cov)
    for name in ("weights", "means", "covs"):
        np.testing.assert_array_equal(getattr(m2, name), getattr(m, name))
    np.testing.assert_array_equal(np.asarray(g2(KEY, 5)), np.asarray(g(KEY, 5)))
    np.testing.assert_array_equal(np.asarray(m2(KEY, 5)), np.asarray(m(KEY, 5)))
    assert g2.spec == f"gaussian:{tmp_path / 'g.npz'}"
    with pytest.raises(ValueError, match="mixture"):
        st.GaussianStyle.load(tmp_path / "m.prior")
    with pytest.raises(FileNotFoundError):
        st.MixtureStyle.load(tmp_path / "absent.npz")


def test_callable_style_checks_the_shape_it_gets():
    bad = st.CallableStyle(lambda key, n: np.zeros((n, D + 1)), D, name="bad")
    with pytest.raises(ValueError, match="bad"):
        bad(KEY, 3)
    with pytest.raises(TypeError):
        st.CallableStyle(3, D)


def test_spec_strings_name_each_source(tmp_path):
    _mixture().save(tmp_path / "m.npz")
    st.fit_gaussian(_gaussian_samples(300)[0]).save(tmp_path / "g.npz")
    assert isinstance(st.style_source_from_spec("prior", D), st.PriorStyle)
    fixed = st.style_source_from_spec(" fixed: 0.1, 0.2,0.3 ,0.4", D)
    np.testing.assert_allclose(fixed.vector, [0.1, 0.2, 0.3, 0.4])
    assert st.style_source_from_spec(fixed.spec, D).spec == fixed.spec
    assert isinstance(st.style_source_from_spec(f"gaussian:{tmp_path}/g.npz", D), st.GaussianStyle)
    mixture = st.style_source_from_spec(f"mixture:{tmp_path}/m.npz", D)
    assert mixture.spec == f"mixture:{tmp_path}/m.npz"
    flux = np.ones((3, 10), np.float32)
    matched = st.style_source_from_spec(
        "matched", D, observed=(flux, flux), encode=lambda f: np.zeros((len(f), D))
    )
    assert isinstance(matched, st.MatchedObservedStyle)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("normal", "unknown style source"),
        ("", "unknown style source"),
        ("fixed:", "needs an argument"),
        ("fixed:1,2,x,4", "comma-separated"),
        ("fixed:1,2,3", "dimension 3"),
        ("prior:2", "takes no argument"),
        ("matched", "observed"),
        ("gaussian:/nonexistent/prior.npz", "does not exist"),
    ],
)
def test_bad_spec_strings_are_refused_clearly(spec, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        st.style_source_from_spec(spec, D)


def _toy_match(seed=0, n_obs=13, n_syn=5, p=60):
    """Observed spectra: each synthetic spectrum, slightly changed, among unrelated ones."""
    rng = np.random.default_rng(seed)
    syn = (1.0 + 0.2 * rng.normal(size=(n_syn, p))).astype(np.float32)
    obs = (1.0 + 0.2 * rng.normal(size=(n_obs, p))).astype(np.float32)
    truth = rng.choice(n_obs, size=n_syn, replace=False)
    obs[truth] = syn * (1.0 + 0.01 * rng.normal(size=(n_syn, p)))
    weight = rng.uniform(0.1, 100.0, size=(n_obs, p)).astype(np.float32)  # noise varies a lot
    weight[truth[0], :20] = 0.0  # masked pixels, with garbage flux, do not count
    obs[truth[0], :20] = np.nan
    weight[truth[1], 30:] = 0.0
    obs[truth[1], 30:] = 50.0
    return syn, obs, weight, truth


def _encode(flux):
    """A stand-in style encoder: the first D pixel values (NaN-free rows only)."""
    return np.nan_to_num(np.asarray(flux)[:, 20 : 20 + D])


@pytest.mark.parametrize("chunk_size", [4, 2048])
def test_matched_source_picks_the_changed_copy_of_each_synthetic_spectrum(chunk_size):
    syn, obs, weight, truth = _toy_match()
    source = st.MatchedObservedStyle((obs, weight), _encode, D, chunk_size=chunk_size)
    index, distance = source.partners(syn)
    np.testing.assert_array_equal(index, truth)
    assert (distance < 1e-3).all()
    s = np.asarray(source(KEY, len(syn), st.StyleContext(flux=syn)))
    np.testing.assert_array_equal(s, _encode(obs[truth]))
    # Deterministic and independent of the key.
    np.testing.assert_array_equal(
        s, np.asarray(source(jax.random.PRNGKey(9), len(syn), st.StyleContext(flux=syn)))
    )


def test_matched_source_reads_a_prepared_store(tmp_path):
    syn, obs, weight, truth = _toy_match(seed=1)
    writer = StoreWriter(tmp_path / "obs", np.arange(syn.shape[1], dtype=float), {}, n_shards=2)
    half = len(obs) // 2
    for i, sl in enumerate((slice(0, half), slice(half, None))):
        n = len(obs[sl])
        ids = np.array([f"s{i}_{j}" for j in range(n)])
        writer.write_shard(i, obs[sl], weight[sl], np.full((n, 3), np.nan), {"id": ids})
    store = PreparedStore(tmp_path / "obs")
    source = st.style_source_from_spec("matched", D, observed=store, encode=_encode)
    index, _ = source.partners(syn)
    np.testing.assert_array_equal(index, truth)
    np.testing.assert_array_equal(source.partner_ids(index), store.meta["id"][truth])
    by_path = st.style_source_from_spec("matched", D, observed=tmp_path / "obs", encode=_encode)
    np.testing.assert_array_equal(
        np.asarray(by_path(KEY, len(syn), st.StyleContext(flux=syn))), _encode(obs[truth])
    )


def test_matched_source_needs_the_synthetic_spectra():
    syn, obs, weight, _ = _toy_match()
    source = st.MatchedObservedStyle((obs, weight), _encode, D)
    with pytest.raises(ValueError, match="context"):
        source(KEY, 3)
    with pytest.raises(ValueError, match="pixels|\\[n, 60\\]"):
        source.partners(syn[:, :10])


def _brute_force_partners(syn, obs, weight, ivar, rows):
    """The partner rule by loops: reduced (weighted) chi2 over each observed spectrum's good
    pixels, among ``rows``."""
    best = []
    for s in syn:
        dist = []
        for m in rows:
            good = weight[m] > 0
            w = np.where(good, weight[m] if ivar else 1.0, 0.0)
            diff = np.where(good, s - obs[m], 0.0)
            dist.append((w * diff**2).sum() / good.sum())
        best.append(rows[int(np.argmin(dist))])
    return np.array(best)


@pytest.mark.parametrize("weighting", ["mask", "ivar"])
@pytest.mark.parametrize("min_snr", [0.0, 30.0])
def test_matched_source_weights_by_ivar_among_bright_spectra(weighting, min_snr):
    """The paper's partner: the smallest error-weighted chi2 among S/N > 30 spectra."""
    rng = np.random.default_rng(4)
    p, n_obs = 50, 40
    syn = (1.0 + 0.1 * rng.normal(size=(6, p))).astype(np.float32)
    obs = (syn[rng.integers(0, 6, n_obs)] + 0.05 * rng.normal(size=(n_obs, p))).astype(np.float32)
    snr = rng.uniform(5.0, 100.0, n_obs)
    weight = (snr[:, None] ** 2 * rng.uniform(0.5, 1.5, (n_obs, p))).astype(np.float32)
    weight[3, :10] = 0.0
    source = st.MatchedObservedStyle(
        (obs, weight), _encode, D, chunk_size=7, weighting=weighting, min_snr=min_snr, snr=snr
    )
    rows = np.flatnonzero(snr >= min_snr)
    index, _ = source.partners(syn)
    want = _brute_force_partners(syn, obs, weight, weighting == "ivar", rows)
    np.testing.assert_array_equal(index, want)
    assert (snr[index] >= min_snr).all()


def test_ivar_matching_without_a_cut_prefers_noisy_spectra():
    """Why the paper's error-weighted partner needs its S/N cut: a noisy copy wins."""
    rng = np.random.default_rng(5)
    syn = (1.0 + 0.1 * rng.normal(size=(1, 40))).astype(np.float32)
    bright = syn[0] + 0.01 * rng.normal(size=40)
    faint = syn[0] + 0.2 * rng.normal(size=40)
    obs = np.stack([bright, faint]).astype(np.float32)
    weight = np.stack([np.full(40, 1e4), np.full(40, 25.0)]).astype(np.float32)
    snr = np.array([100.0, 5.0])
    by_ivar = st.MatchedObservedStyle((obs, weight), _encode, D, weighting="ivar", snr=snr)
    assert by_ivar.partners(syn)[0][0] == 1
    cut = st.MatchedObservedStyle((obs, weight), _encode, D, weighting="ivar", min_snr=30, snr=snr)
    assert cut.partners(syn)[0][0] == 0
    with pytest.raises(ValueError, match="S/N"):
        st.MatchedObservedStyle((obs, weight), _encode, D, min_snr=30)
    with pytest.raises(ValueError, match="S/N >= 500"):
        st.MatchedObservedStyle((obs, weight), _encode, D, min_snr=500, snr=snr)
