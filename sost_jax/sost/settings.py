"""The settings of SOST's network, losses and training: the ``model``, ``dis``, ``loss`` and
``train`` sections of a config, each a typed dataclass that checks itself.

The defaults are sost-jax's; ``configs/paper.py`` and ``configs/reference.py`` set the
paper's and the public reference code's.
"""

from __future__ import annotations

from dataclasses import dataclass

from sost_jax.errors import InputError
from sost_jax.settings import Settings, at_least, nonnegative, one_of


@dataclass(frozen=True)
class ModelSettings(Settings):
    """The generator: both domains' auto-encoders (content and style encoders, AdaIN
    decoder); see `sost_jax.sost.models`.

    Attributes
    ----------
    arch : str
        "padded" (sost-jax: padded convolutions, content code P / 4) or "reference" (the
        public PyTorch code's unpadded network, 256 x 1197 at 4800 pixels, stride-4 style
        encoder entry).
    init : str
        "kaiming" (He-normal convolutions and MLP, zero biases) or "reference"
        (convolutions N(0, 0.02), PyTorch's default biases and MLP: small AdaIN params).
    dim : int
        Channels after the first convolution.
    n_down, down_stride : int
        Down-samplings in the encoders (= up-samplings in the decoder) and their stride.
    n_res, kernel_res : int
        Residual blocks in the content encoder and the decoder, and their (odd) kernel.
    style_kernel : int
        Kernel (odd) of the style encoder's strided convolutions.
    style_dim, mlp_dim : int
        Style code length; hidden width of the style -> AdaIN MLP.
    pad_mode : str
        "reflect" or "zero".
    conv_impl : str
        "xla" (lax.conv, faster on CPU) or "matmul".
    dtype : str
        Compute dtype, "float32" or "bfloat16" (parameters stay float32).
    translation : str
        a -> b as "direct" (the paper's: dec_b(content_a, style)) or "change" (x_a +
        change_b(content_a, style): a second decoder per domain, zero at start and told the
        position along the spectrum, draws only the change).
    """

    section = "model"
    arch: str = "padded"
    init: str = "kaiming"
    dim: int = 64
    n_down: int = 2
    down_stride: int = 2
    n_res: int = 3
    kernel_res: int = 7
    style_kernel: int = 7
    style_dim: int = 8
    mlp_dim: int = 256
    pad_mode: str = "reflect"
    conv_impl: str = "xla"
    dtype: str = "float32"
    translation: str = "direct"

    def __post_init__(self) -> None:
        one_of(self, "arch", ("padded", "reference"))
        one_of(self, "init", ("kaiming", "reference"))
        one_of(self, "translation", ("direct", "change"))
        _common_checks(self)
        keys = ("dim", "n_down", "down_stride", "n_res", "kernel_res", "style_dim", "mlp_dim")
        at_least(self, 1, *keys)
        if self.kernel_res % 2 == 0 or self.style_kernel % 2 == 0:
            raise InputError("model.kernel_res and model.style_kernel must be odd")


@dataclass(frozen=True)
class DisSettings(Settings):
    """The multi-scale discriminators.

    Attributes
    ----------
    dim, n_layers, n_scales : int
        Channels of the first layer, layers per scale, scales.
    leaky_slope : float
        Of the LeakyReLUs, in [0, 1) (the reference: 0.1).
    downsample : str
        Between scales: "avg3" (3-wide average pool, stride 2) or "decimate" (every other
        pixel: the reference's 1-wide average pool).
    init : str
        "normal" (N(0, 0.02), zero biases) or "reference".
    pad_mode, conv_impl, dtype : str
        As `ModelSettings`'.
    """

    section = "dis"
    dim: int = 64
    n_layers: int = 4
    n_scales: int = 3
    leaky_slope: float = 0.2
    downsample: str = "avg3"
    init: str = "normal"
    pad_mode: str = "reflect"
    conv_impl: str = "xla"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        one_of(self, "init", ("normal", "reference"))
        one_of(self, "downsample", ("avg3", "decimate"))
        if not 0 <= self.leaky_slope < 1:
            raise InputError(f"dis.leaky_slope must be in [0, 1), got {self.leaky_slope}")
        _common_checks(self)
        at_least(self, 1, "dim", "n_layers", "n_scales")


def _common_checks(s: Settings) -> None:
    one_of(s, "pad_mode", ("reflect", "zero"))
    one_of(s, "conv_impl", ("matmul", "xla"))
    one_of(s, "dtype", ("float32", "bfloat16"))


@dataclass(frozen=True)
class LossSettings(Settings):
    """Loss weights (each >= 0; a term of weight 0 is left out) and their options.

    sost-jax's defaults: GAN 1, in-domain reconstruction 10, content 1, style 1, no cycle.

    Attributes
    ----------
    gan, recon_x, recon_c, recon_s, cycle : float
        LSGAN, in-domain L1 reconstruction, content and style code reconstruction, cycle.
    paired : float
        L1 of translated synthetic partners against observed spectra (paired SOST).
    mean_gap : float
        L1 between the translations' mean change and the mean difference between the
        observed and synthetic training sets (label-free; assumes similar populations).
    detach_content : bool
        The content reconstruction's target (the source's content code) held fixed
        (stop-gradient), as the reference code does.
    gan_measured : bool
        The observed domain's discriminator sees translations with the noise and mask of
        observed spectra of the batch (`sost_jax.sost.objectives.as_measured`).
    recon_weighting : str
        "mask": reconstruction L1 only over pixels with data; "none": over all.
    """

    section = "loss"
    gan: float = 1.0
    recon_x: float = 10.0
    recon_c: float = 1.0
    recon_s: float = 1.0
    cycle: float = 0.0
    paired: float = 0.0
    mean_gap: float = 0.0
    detach_content: bool = False
    gan_measured: bool = False
    recon_weighting: str = "mask"

    def __post_init__(self) -> None:
        nonnegative(self, "gan", "recon_x", "recon_c", "recon_s", "cycle", "paired", "mean_gap")
        one_of(self, "recon_weighting", ("mask", "none"))


@dataclass(frozen=True)
class TrainSettings(Settings):
    """Training: the two domains' prepared stores, Adam and its linear decay, bookkeeping.

    Attributes
    ----------
    synthetic_store, observed_store : str
        Prepared stores of the synthetic (a) and observed (b) domains.
    paired_store : str
        Synthetic spectra at the observed spectra's labels, row-aligned with the observed
        store (`sost_jax.sost.pairing`); needed when ``loss.paired > 0``.
    batch_size, steps : int
    lr, beta1, beta2, weight_decay : float
        Adam(W)'s settings.
    decay_start : int
        The learning rate is constant until this step, then falls linearly to 0 at
        ``steps``.
    seed : int
    n_val : int
        Held-out spectra per domain for validation.
    log_every, eval_every, checkpoint_every, keep_checkpoints : int
    prefetch : int
        Batches read ahead per domain.
    min_snr : float
        Observed spectra used need S/N per pixel >= this (0: all).
    dis_fakes : str
        What the discriminators see as fakes: "fresh" translations by the updated
        generators, or the "same" ones as the generator step (the reference's order).
    distributed : bool
        One of several processes (`sost_jax.runtime.distributed`).
    """

    section = "train"
    synthetic_store: str = ""
    observed_store: str = ""
    paired_store: str = ""
    batch_size: int = 8
    steps: int = 200_000
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    decay_start: int = 100_000
    seed: int = 0
    n_val: int = 256
    log_every: int = 10
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    prefetch: int = 2
    min_snr: float = 0.0
    dis_fakes: str = "fresh"
    distributed: bool = False

    def __post_init__(self) -> None:
        keys = (
            "batch_size",
            "steps",
            "log_every",
            "eval_every",
            "checkpoint_every",
            "keep_checkpoints",
            "prefetch",
        )
        at_least(self, 1, *keys)
        one_of(self, "dis_fakes", ("fresh", "same"))
        nonnegative(self, "min_snr")
        if not self.lr > 0 or not 0 <= self.decay_start <= self.steps:
            raise InputError("train.lr must be > 0 and 0 <= train.decay_start <= train.steps")
