"""SOST's training objectives: the MUNIT generator loss with its extra terms, and the
discriminators' LSGAN loss.

The generator loss (`generator_loss`) is composed of objectives, each a function that
returns its terms (unweighted; the weights are ``config.loss``):

- in-domain reconstruction (`reconstruction_terms`: ``recon_x_a``, ``recon_x_b``);
- the unpaired cross-domain MUNIT terms on the translations (`cross_domain`): the latent
  reconstructions (`latent_terms`: ``recon_s_*``, ``recon_c_*``), the adversarial terms
  (`adversarial_terms`: ``gan_*``) and, with ``loss.cycle`` > 0, the cycle (`cycle_terms`:
  ``cycle_*``);
- the mean gap between the domains (`mean_gap_term`: ``mean_gap``, with ``loss.mean_gap``
  > 0);
- the paired term over synthetic partners of observed spectra (`paired_term`: ``paired``,
  with ``loss.paired`` > 0).

Domains are keyed "a" (synthetic) and "b" (observed), as the parameter trees.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from sost_jax.errors import InputError
from sost_jax.sost import losses
from sost_jax.sost.discriminator import MultiScaleDiscriminator
from sost_jax.sost.translation import codecs, cross, translate

Array = jax.Array


class Codes(NamedTuple):
    """Content and style codes of a batch of each domain.

    Attributes
    ----------
    content : dict domain -> [B, L, C]
    style : dict domain -> [B, style_dim]
    """

    content: dict[str, Array]
    style: dict[str, Array]


def as_measured(x: Array, weight: Array, key: Array) -> Array:
    """Noiseless spectra ``x`` [B, P] as the survey would record them: each gets the noise
    and the mask of another observed spectrum of the batch (``weight`` [B, P], inverse
    variance; rows paired by a random permutation), Gaussian noise of variance 1 / weight
    where it has data and flux 1 where it has none (as the stores fill masked pixels).

    The discriminator of the observed domain then compares like with like (loss.gan_measured,
    as in AmbientGAN): without it, noise is what tells a translation from an observed
    spectrum, and the generator learns to paint noise on.
    """
    k_perm, k_noise = jax.random.split(key)
    w = weight[jax.random.permutation(k_perm, weight.shape[0])]
    good = w > 0
    sigma = jnp.where(good, jax.lax.rsqrt(jnp.where(good, w, 1.0)), 0.0)
    noisy = x + sigma * jax.random.normal(k_noise, x.shape, x.dtype)
    return jnp.where(good, noisy, 1.0)


def _seen_by_observed(x: Array, batch: dict[str, Array], key: Array, config: ConfigDict) -> Array:
    """Translations ``x`` [B, P] into the observed domain as its discriminator sees them:
    `as_measured` with ``loss.gan_measured``, else unchanged."""
    if not config.loss.gan_measured:
        return x
    return as_measured(x, batch["w_b"], jax.random.fold_in(key, 7))


def _both(terms: dict[str, Array], name: str) -> Array:
    """The sum of a term over both domains: ``name_a`` + ``name_b``."""
    return terms[f"{name}_a"] + terms[f"{name}_b"]


def reconstruction_masks(batch: dict[str, Array], config: ConfigDict) -> dict[str, Array | None]:
    """Pixel weights [B, P] of the reconstruction L1 of each domain: the batch's weights
    (``loss.recon_weighting`` "mask"), or None (all pixels)."""
    if config.loss.recon_weighting != "mask":
        return {"a": None, "b": None}
    return {"a": batch["w_a"], "b": batch["w_b"]}


def encode_batch(
    gen: Any, batch: dict[str, Array], key: Array, config: ConfigDict
) -> tuple[Codes, dict[str, Array]]:
    """Each domain's own codes of its spectra, and random styles from the N(0, 1) prior.

    Returns
    -------
    own : Codes
        Content and style of ``x_a`` (by generator "a") and ``x_b`` (by "b").
    prior : dict domain -> [B, style_dim]
        Random styles of each domain (drawn with ``key``).
    """
    encode, _ = codecs(config.model, batch["x_a"].shape[1])
    c_a, s_a = encode(gen["a"], batch["x_a"])
    c_b, s_b = encode(gen["b"], batch["x_b"])
    k_a, k_b = jax.random.split(key)
    prior = {"a": jax.random.normal(k_a, s_a.shape), "b": jax.random.normal(k_b, s_b.shape)}
    return Codes({"a": c_a, "b": c_b}, {"a": s_a, "b": s_b}), prior


def reconstruction_terms(
    gen: Any,
    batch: dict[str, Array],
    own: Codes,
    masks: dict[str, Array | None],
    config: ConfigDict,
) -> dict[str, Array]:
    """In-domain reconstruction: L1 of each spectrum decoded from its own codes
    (``recon_x_a``, ``recon_x_b``; over the pixels of ``masks``)."""
    _, decode = codecs(config.model, batch["x_a"].shape[1])
    x_a_rec = decode(gen["a"], own.content["a"], own.style["a"])
    x_b_rec = decode(gen["b"], own.content["b"], own.style["b"])
    return {
        "recon_x_a": losses.masked_l1(x_a_rec, batch["x_a"], masks["a"]),
        "recon_x_b": losses.masked_l1(x_b_rec, batch["x_b"], masks["b"]),
    }


def cross_domain(
    gen: Any, batch: dict[str, Array], own: Codes, prior: dict[str, Array], config: ConfigDict
) -> tuple[dict[str, Array], Codes]:
    """Each domain's spectra translated into the other with random styles, and re-encoded.

    Returns
    -------
    translations : dict
        ``x_ba`` [B, P] observed -> synthetic (style ``prior["a"]``) and ``x_ab`` synthetic
        -> observed (style ``prior["b"]``).
    recovered : Codes
        The codes read back from the translations: content of each source domain, and the
        style of each target domain.
    """
    encode, _ = codecs(config.model, batch["x_a"].shape[1])
    x_ba = cross(gen, batch["x_b"], own.content["b"], prior["a"], "b", config.model)
    x_ab = cross(gen, batch["x_a"], own.content["a"], prior["b"], "a", config.model)
    c_b_rec, s_a_rec = encode(gen["a"], x_ba)
    c_a_rec, s_b_rec = encode(gen["b"], x_ab)
    recovered = Codes({"a": c_a_rec, "b": c_b_rec}, {"a": s_a_rec, "b": s_b_rec})
    return {"x_ba": x_ba, "x_ab": x_ab}, recovered


def latent_terms(
    own: Codes, prior: dict[str, Array], recovered: Codes, config: ConfigDict
) -> dict[str, Array]:
    """L1 of the codes read back from the translations against the codes they were made
    from: the random styles (``recon_s_*``) and the sources' content (``recon_c_*``; held
    fixed with ``loss.detach_content``, as the reference does)."""
    hold = jax.lax.stop_gradient if config.loss.detach_content else (lambda v: v)
    return {
        "recon_s_a": losses.l1(recovered.style["a"], prior["a"]),
        "recon_s_b": losses.l1(recovered.style["b"], prior["b"]),
        "recon_c_a": losses.l1(recovered.content["a"], hold(own.content["a"])),
        "recon_c_b": losses.l1(recovered.content["b"], hold(own.content["b"])),
    }


def adversarial_terms(
    dis: Any,
    translations: dict[str, Array],
    batch: dict[str, Array],
    key: Array,
    config: ConfigDict,
) -> dict[str, Array]:
    """LSGAN generator loss of the translations before each target domain's discriminator
    (``gan_a`` for ``x_ba``, ``gan_b`` for ``x_ab``)."""
    disc = MultiScaleDiscriminator(config.dis)
    gan_a = losses.lsgan_generator(disc.apply({"params": dis["a"]}, translations["x_ba"]))
    seen_b = _seen_by_observed(translations["x_ab"], batch, key, config)
    gan_b = losses.lsgan_generator(disc.apply({"params": dis["b"]}, seen_b))
    return {"gan_a": gan_a, "gan_b": gan_b}


def cycle_terms(
    gen: Any,
    batch: dict[str, Array],
    own: Codes,
    translations: dict[str, Array],
    recovered: Codes,
    masks: dict[str, Array | None],
    config: ConfigDict,
) -> dict[str, Array]:
    """The translations back to the source domain with the source's own style, L1 against
    the source spectra (``cycle_a``, ``cycle_b``; over the pixels of ``masks``)."""
    m = config.model
    cycle_a = cross(gen, translations["x_ab"], recovered.content["a"], own.style["a"], "b", m)
    cycle_b = cross(gen, translations["x_ba"], recovered.content["b"], own.style["b"], "a", m)
    return {
        "cycle_a": losses.masked_l1(cycle_a, batch["x_a"], masks["a"]),
        "cycle_b": losses.masked_l1(cycle_b, batch["x_b"], masks["b"]),
    }


def mean_gap_term(x_ab: Array, x_a: Array, constants: dict[str, Array] | None) -> Array:
    """Mean |mean change of the translations - the mean gap| over the pixels where the gap
    is known.

    The translations' mean change must be the mean difference between the two domains'
    training sets (no labels: it assumes similar populations, as the GAN).

    Parameters
    ----------
    x_ab : [B, P] synthetic spectra ``x_a`` [B, P] translated into the observed domain.
    constants : dict
        ``mean_gap`` [P]: see `generator_loss`.
    """
    if not constants or "mean_gap" not in constants:
        raise InputError(
            "loss.mean_gap > 0 needs the two training sets' mean difference: "
            "constants={'mean_gap': domain_mean(observed) - domain_mean(synthetic)}"
        )
    gap = constants["mean_gap"]
    moved = (x_ab - x_a).mean(axis=0)
    known = jnp.isfinite(gap)
    diff = jnp.where(known, jnp.abs(moved - jnp.where(known, gap, 0.0)), 0.0)
    return diff.sum() / jnp.maximum(known.sum(), 1).astype(diff.dtype)


def paired_term(gen: Any, batch: dict[str, Array], config: ConfigDict) -> Array:
    """L1 of the synthetic partners ``p`` (same labels) of observed spectra ``x_p``,
    translated with each observed spectrum's own style, against that spectrum (rows without
    a partner have ``pw`` = 0 and count for nothing)."""
    encode, _ = codecs(config.model, batch["x_a"].shape[1])
    _, s_p = encode(gen["b"], batch["x_p"])
    x_pb = translate(gen, batch["p"], "a", s_p, config.model)
    mask = jnp.where(batch["pw"] > 0, batch["w_p"], 0.0)
    return losses.masked_l1(x_pb, batch["x_p"], mask)


def generator_loss(
    gen: Any,
    dis: Any,
    batch: dict[str, Array],
    key: Array,
    config: ConfigDict,
    constants: dict[str, Array] | None = None,
) -> tuple[Array, tuple[dict[str, Array], dict[str, Array]]]:
    """MUNIT generator objective for one batch of each domain, with the paired term.

    Terms whose weight in ``config.loss`` is 0 are left out: the cross-domain ones (GAN,
    style, content, cycle) are not computed at all when all four are 0.

    Parameters
    ----------
    gen, dis : dict domain -> params
    batch : dict
        x_a, w_a, x_b, w_b: [B, P] normalised flux and weights of each domain; with
        ``loss.paired`` > 0 also x_p, w_p: [B, P] observed spectra that have synthetic
        partners (their own batch), and p, pw: [B, P] those partners and their weights (0
        where a star has no partner).
    key : PRNG key for the random styles drawn from the N(0, 1) prior.
    config : ConfigDict
    constants : dict, optional
        ``mean_gap`` [P] (with ``loss.mean_gap`` > 0): the observed training spectra's mean
        minus the synthetic ones' (`sost_jax.sost.input_pipeline.domain_mean`), NaN where
        unknown.

    Returns
    -------
    total loss, and (each term, unweighted (weights in config.loss); the translations made,
    held fixed: ``x_ba`` [B, P] observed -> synthetic and ``x_ab`` synthetic -> observed,
    empty when no cross-domain term is weighted).
    """
    w = config.loss
    masks = reconstruction_masks(batch, config)
    own, prior = encode_batch(gen, batch, key, config)
    terms = reconstruction_terms(gen, batch, own, masks, config)
    total = w.recon_x * _both(terms, "recon_x")
    translations: dict[str, Array] = {}
    if max(w.gan, w.recon_s, w.recon_c, w.cycle) > 0:  # the unpaired cross-domain terms
        translations, recovered = cross_domain(gen, batch, own, prior, config)
        terms.update(latent_terms(own, prior, recovered, config))
        terms.update(adversarial_terms(dis, translations, batch, key, config))
        total = (
            total
            + w.gan * _both(terms, "gan")
            + w.recon_s * _both(terms, "recon_s")
            + w.recon_c * _both(terms, "recon_c")
        )
        if w.cycle > 0:
            terms.update(cycle_terms(gen, batch, own, translations, recovered, masks, config))
            total = total + w.cycle * _both(terms, "cycle")
    if w.mean_gap > 0:
        x_ab = translations.get("x_ab")
        if x_ab is None:
            x_ab = cross(gen, batch["x_a"], own.content["a"], prior["b"], "a", config.model)
        terms["mean_gap"] = mean_gap_term(x_ab, batch["x_a"], constants)
        total = total + w.mean_gap * terms["mean_gap"]
    if w.paired > 0:
        terms["paired"] = paired_term(gen, batch, config)
        total = total + w.paired * terms["paired"]
    fakes = {k: jax.lax.stop_gradient(v) for k, v in translations.items()}
    return total, (terms, fakes)


def discriminator_loss(
    dis: Any,
    gen: Any,
    batch: dict[str, Array],
    key: Array,
    config: ConfigDict,
    fakes: dict[str, Array] | None = None,
) -> tuple[Array, dict[str, Array]]:
    """LSGAN loss of both discriminators: real spectra against ``fakes`` (``x_ba``,
    ``x_ab`` [B, P], e.g. those of the generator step), or, when None, against fresh
    translations by the generators ``gen`` with random styles."""
    disc = MultiScaleDiscriminator(config.dis)
    if fakes is None:
        style_dim = config.model.style_dim
        k_a, k_b = jax.random.split(key)
        b = batch["x_a"].shape[0]
        fakes = {
            "x_ba": translate(
                gen, batch["x_b"], "b", jax.random.normal(k_a, (b, style_dim)), config.model
            ),
            "x_ab": translate(
                gen, batch["x_a"], "a", jax.random.normal(k_b, (b, style_dim)), config.model
            ),
        }
    x_ba, x_ab = jax.lax.stop_gradient(fakes["x_ba"]), jax.lax.stop_gradient(fakes["x_ab"])
    x_ab = _seen_by_observed(x_ab, batch, key, config)

    def d(p: Any, x: Array) -> list[Array]:
        return disc.apply({"params": p}, x)

    terms = {
        "dis_a": losses.lsgan_discriminator(d(dis["a"], batch["x_a"]), d(dis["a"], x_ba)),
        "dis_b": losses.lsgan_discriminator(d(dis["b"], batch["x_b"]), d(dis["b"], x_ab)),
    }
    return config.loss.gan * (terms["dis_a"] + terms["dis_b"]), terms
