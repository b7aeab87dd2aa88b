"""PyTorch reference of the SOST network and of one training step (1-D MUNIT, channels-first).

The network of the paper in the layout of the original PyTorch code: tensors are (N, C, L),
float32; one domain pair is two auto-encoders (A = synthetic, B = observed) and two
multi-scale discriminators. `benchmarks/train_step.py` times this step next to the JAX one in
the same run. torch is imported here only; it is not a dependency of ``sost_jax``.

    python benchmarks/torch_reference.py [--steps 3] [--batch 8] [--pixels 4800]

Paper configuration: width 64, 2 down-samplings, 3 residual blocks, style dim 8, MLP dim 256,
4800 pixels, 1 input channel, 3 discriminator scales; convolutions pad by reflection.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Parameter counts of the paper configuration (one auto-encoder's two encoders, one
#: decoder with its AdaIN MLP, one three-scale discriminator).
PAPER_PARAM_COUNTS = {
    "encoders": 3_208_456,
    "decoder": 3_776_513,
    "discriminator": 2_072_643,
}

EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class ReferenceConfig:
    """Sizes, loss weights and optimiser settings of the reference network and step.

    The defaults are the paper configuration (batch 8 of 4800-pixel spectra).
    """

    input_dim: int = 1
    dim: int = 64
    n_downsample: int = 2
    n_res: int = 3
    style_dim: int = 8
    mlp_dim: int = 256
    dis_dim: int = 64
    dis_n_layer: int = 4
    dis_n_scales: int = 3
    pixels: int = 4800
    batch_size: int = 8
    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_c_w: float = 1.0
    recon_s_w: float = 1.0
    recon_x_cyc_w: float = 0.0
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    pad_mode: str = "reflect"
    #: the discriminators' fakes: "fresh" translations by the updated generators, or the
    #: "same" ones as the generator step (`train.dis_fakes`)
    dis_fakes: str = "fresh"

    @property
    def content_dim(self) -> int:
        """Channels of the content code (``dim * 2**n_downsample``)."""
        return self.dim * 2**self.n_downsample

    @property
    def n_adain(self) -> int:
        """AdaIN parameters the MLP produces: 2 layers per block, beta and gamma each."""
        return self.n_res * 2 * 2 * self.content_dim


#: Padding of every convolution: "reflect" (MUNIT ``pad_type='reflect'``) or "zeros".
PAD_MODE = {"reflect": "reflect", "zero": "zeros", "zeros": "zeros"}


def conv(
    c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, pad: str = "reflect"
) -> nn.Conv1d:
    """A Conv1d padding by reflection (MUNIT ``pad_type='reflect'``) or with zeros."""
    return nn.Conv1d(c_in, c_out, kernel, stride, padding, padding_mode=PAD_MODE[pad])


def instance_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each sample's channel over length (no affine). x: (N, C, L)."""
    return F.instance_norm(x, eps=EPS)


def adain(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Adaptive instance norm: ``instance_norm(x) * gamma + beta``.

    Parameters
    ----------
    x : Tensor, shape (N, C, L)
    beta, gamma : Tensor, shape (N, C)
    """
    return instance_norm(x) * gamma[:, :, None] + beta[:, :, None]


class LayerNorm(nn.Module):
    """MUNIT's layer norm: (x - mean) / (std + eps) over (C, L) of each sample (std with
    Bessel's correction), then a per-channel affine (2 C parameters)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, L) -> (N, C, L)."""
        flat = x.reshape(x.shape[0], -1)
        mean, std = flat.mean(1)[:, None, None], flat.std(1)[:, None, None]
        y = (x - mean) / (std + EPS)
        return y * self.gamma[None, :, None] + self.beta[None, :, None]


class ResBlock(nn.Module):
    """``x + [conv k7 + norm + ReLU, conv k7 + norm]``; norm is IN, or AdaIN when given."""

    def __init__(self, dim: int, pad: str = "reflect"):
        super().__init__()
        self.conv1 = conv(dim, dim, 7, 1, 3, pad)
        self.conv2 = conv(dim, dim, 7, 1, 3, pad)

    def forward(self, x: torch.Tensor, adain_params: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, C, L); adain_params: (N, 4 C) as [beta1, gamma1, beta2, gamma2] or None."""
        c = x.shape[1]
        h = self.conv1(x)
        if adain_params is None:
            h = instance_norm(h)
        else:
            h = adain(h, adain_params[:, :c], adain_params[:, c : 2 * c])
        h = F.relu(h)
        h = self.conv2(h)
        if adain_params is None:
            h = instance_norm(h)
        else:
            h = adain(h, adain_params[:, 2 * c : 3 * c], adain_params[:, 3 * c :])
        return x + h


class ContentEncoder(nn.Module):
    """(N, 1, P) -> content code (N, dim 2**n_down, P / 2**n_down)."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        pad = cfg.pad_mode
        self.first = conv(cfg.input_dim, cfg.dim, 7, 1, 3, pad)
        d = cfg.dim
        self.down = nn.ModuleList()
        for _ in range(cfg.n_downsample):
            self.down.append(conv(d, 2 * d, 4, 2, 1, pad))
            d *= 2
        self.res = nn.ModuleList([ResBlock(d, pad) for _ in range(cfg.n_res)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, P) -> (N, C, L)."""
        h = F.relu(instance_norm(self.first(x)))
        for layer in self.down:
            h = F.relu(instance_norm(layer(h)))
        for block in self.res:
            h = block(h)
        return h


class StyleEncoder(nn.Module):
    """(N, 1, P) -> style code (N, style_dim); no normalisation, global average pool."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        pad = cfg.pad_mode
        layers = [conv(cfg.input_dim, cfg.dim, 7, 1, 3, pad)]
        d = cfg.dim
        for _ in range(cfg.n_downsample):
            layers.append(conv(d, 2 * d, 7, 2, 3, pad))
            d *= 2
        self.convs = nn.ModuleList(layers)
        self.out = nn.Conv1d(d, cfg.style_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, P) -> (N, style_dim)."""
        h = x
        for layer in self.convs:
            h = F.relu(layer(h))
        h = h.mean(dim=2, keepdim=True)
        return self.out(h)[:, :, 0]


class MLP(nn.Module):
    """Style (N, style_dim) -> AdaIN parameters (N, n_adain)."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.style_dim, cfg.mlp_dim)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.mlp_dim)
        self.fc3 = nn.Linear(cfg.mlp_dim, cfg.n_adain)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s: (N, style_dim) -> (N, n_adain)."""
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(s)))))


class Decoder(nn.Module):
    """Content (N, C, L) and style (N, style_dim) -> spectrum (N, 1, P); AdaIN via the MLP."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        d = cfg.content_dim
        self.mlp = MLP(cfg)
        self.res = nn.ModuleList([ResBlock(d, cfg.pad_mode) for _ in range(cfg.n_res)])
        self.up = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(cfg.n_downsample):
            self.up.append(nn.ConvTranspose1d(d, d // 2, 4, 2, 1))
            self.norms.append(LayerNorm(d // 2))
            d //= 2
        self.last = conv(d, cfg.input_dim, 7, 1, 3, cfg.pad_mode)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """content: (N, C, L), style: (N, style_dim) -> (N, 1, P)."""
        params = self.mlp(style)
        per_block = 4 * content.shape[1]
        h = content
        for i, block in enumerate(self.res):
            h = block(h, params[:, i * per_block : (i + 1) * per_block])
        for up, norm in zip(self.up, self.norms, strict=True):
            h = F.relu(norm(up(h)))
        return self.last(h)


class AutoEncoder(nn.Module):
    """One domain's content encoder, style encoder and decoder."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        self.enc_content = ContentEncoder(cfg)
        self.enc_style = StyleEncoder(cfg)
        self.dec = Decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 1, P) -> content (N, C, L), style (N, style_dim)."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """content (N, C, L), style (N, style_dim) -> (N, 1, P)."""
        return self.dec(content, style)


class Discriminator(nn.Module):
    """One scale: (N, 1, P) -> patch scores (N, 1, P / 2**dis_n_layer)."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        pad = cfg.pad_mode
        self.first = conv(cfg.input_dim, cfg.dis_dim, 4, 2, 1, pad)
        d = cfg.dis_dim
        self.blocks = nn.ModuleList()
        for _ in range(cfg.dis_n_layer - 1):
            self.blocks.append(conv(d, 2 * d, 4, 2, 1, pad))
            d *= 2
        self.last = conv(d, 1, 3, 1, 1, pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, P) -> (N, 1, P / 2**dis_n_layer)."""
        h = F.leaky_relu(self.first(x), 0.2)
        for layer in self.blocks:
            h = F.leaky_relu(instance_norm(layer(h)), 0.2)
        return self.last(h)


class MultiScaleDiscriminator(nn.Module):
    """Discriminators on the input and on its 2x, 4x, ... average-pooled versions."""

    def __init__(self, cfg: ReferenceConfig):
        super().__init__()
        self.scales = nn.ModuleList([Discriminator(cfg) for _ in range(cfg.dis_n_scales)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (N, 1, P) -> one score map per scale."""
        outs = []
        for i, scale in enumerate(self.scales):
            if i:
                x = F.avg_pool1d(x, 3, 2, 1, count_include_pad=False)
            outs.append(scale(x))
        return outs


def count_params(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters())


def param_counts(cfg: ReferenceConfig) -> dict[str, int]:
    """Parameter counts of one auto-encoder's encoders, its decoder and one discriminator."""
    ae, dis = AutoEncoder(cfg), MultiScaleDiscriminator(cfg)
    return {
        "encoders": count_params(ae.enc_content) + count_params(ae.enc_style),
        "decoder": count_params(ae.dec),
        "discriminator": count_params(dis),
    }


def check_paper_param_counts() -> dict[str, int]:
    """Build the paper configuration and assert its parameter counts; returns them."""
    counts = param_counts(ReferenceConfig())
    if counts != PAPER_PARAM_COUNTS:
        raise AssertionError(f"parameter counts {counts} != paper {PAPER_PARAM_COUNTS}")
    return counts


def l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference; over elements where ``mask`` > 0 only, when given."""
    diff = torch.abs(a - b)
    if mask is None:
        return torch.mean(diff)
    m = (mask > 0).to(diff.dtype)
    return (diff * m).sum() / m.sum().clamp(min=1.0)


def gen_adv_loss(outs: Sequence[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss: sum over scales of ``mean((D(fake) - 1)**2)``."""
    return sum(torch.mean((o - 1) ** 2) for o in outs)


def dis_loss(fake: Sequence[torch.Tensor], real: Sequence[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss: sum over scales of ``mean(D(fake)**2) + mean((D(real)-1)**2)``."""
    return sum(torch.mean(f**2) + torch.mean((r - 1) ** 2) for f, r in zip(fake, real, strict=True))


def _init_kaiming(m: nn.Module) -> None:
    """MUNIT ``init='kaiming'``: He-normal (fan-in) kernels, zero biases."""
    if isinstance(m, nn.Conv1d | nn.ConvTranspose1d | nn.Linear):
        nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        nn.init.zeros_(m.bias)


def _init_gaussian(m: nn.Module) -> None:
    """MUNIT ``init='gaussian'``: N(0, 0.02) kernels, zero biases."""
    if isinstance(m, nn.Conv1d):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


class ReferenceTrainer:
    """Two auto-encoders, two discriminators, their Adam optimisers and the MUNIT step.

    Parameters
    ----------
    cfg : ReferenceConfig
    seed : int
        Seeds parameter initialisation and the random styles.
    """

    def __init__(self, cfg: ReferenceConfig, seed: int = 0):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.gen_a, self.gen_b = AutoEncoder(cfg), AutoEncoder(cfg)
        self.dis_a, self.dis_b = MultiScaleDiscriminator(cfg), MultiScaleDiscriminator(cfg)
        for module in (self.gen_a, self.gen_b):
            module.apply(_init_kaiming)
        for module in (self.dis_a, self.dis_b):
            module.apply(_init_gaussian)
        betas, wd = (cfg.beta1, cfg.beta2), cfg.weight_decay
        self.gen_params = [*self.gen_a.parameters(), *self.gen_b.parameters()]
        self.dis_params = [*self.dis_a.parameters(), *self.dis_b.parameters()]
        self.gen_opt = torch.optim.Adam(self.gen_params, lr=cfg.lr, betas=betas, weight_decay=wd)
        self.dis_opt = torch.optim.Adam(self.dis_params, lr=cfg.lr, betas=betas, weight_decay=wd)

    def _random_styles(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, self.cfg.style_dim), torch.randn(n, self.cfg.style_dim)

    def gen_update(
        self,
        x_a: torch.Tensor,
        x_b: torch.Tensor,
        w_a: torch.Tensor | None = None,
        w_b: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One Adam step of both auto-encoders. x_*, w_*: (N, 1, P)."""
        cfg = self.cfg
        for p in self.dis_params:
            p.requires_grad_(False)
        s_a, s_b = self._random_styles(x_a.shape[0])
        c_a, s_a_prime = self.gen_a.encode(x_a)
        c_b, s_b_prime = self.gen_b.encode(x_b)
        x_a_recon = self.gen_a.decode(c_a, s_a_prime)
        x_b_recon = self.gen_b.decode(c_b, s_b_prime)
        x_ba = self.gen_a.decode(c_b, s_a)
        x_ab = self.gen_b.decode(c_a, s_b)
        c_b_recon, s_a_recon = self.gen_a.encode(x_ba)
        c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
        loss_x = l1(x_a_recon, x_a, w_a) + l1(x_b_recon, x_b, w_b)
        loss_c = l1(c_a_recon, c_a) + l1(c_b_recon, c_b)
        loss_s = l1(s_a_recon, s_a) + l1(s_b_recon, s_b)
        loss_gan = gen_adv_loss(self.dis_a(x_ba)) + gen_adv_loss(self.dis_b(x_ab))
        total = (
            cfg.gan_w * loss_gan
            + cfg.recon_x_w * loss_x
            + cfg.recon_c_w * loss_c
            + cfg.recon_s_w * loss_s
        )
        loss_cyc = torch.zeros(())
        if cfg.recon_x_cyc_w > 0:
            x_aba = self.gen_a.decode(c_a_recon, s_a_prime)
            x_bab = self.gen_b.decode(c_b_recon, s_b_prime)
            loss_cyc = l1(x_aba, x_a, w_a) + l1(x_bab, x_b, w_b)
            total = total + cfg.recon_x_cyc_w * loss_cyc
        self.gen_opt.zero_grad(set_to_none=True)
        total.backward()
        self.gen_opt.step()
        self._fakes = (x_ba.detach(), x_ab.detach())
        for p in self.dis_params:
            p.requires_grad_(True)
        return {
            "gen_total": total.item(),
            "gen_gan": loss_gan.item(),
            "recon_x": loss_x.item(),
            "recon_c": loss_c.item(),
            "recon_s": loss_s.item(),
            "recon_cyc": loss_cyc.item(),
        }

    def dis_update(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, float]:
        """One Adam step of both discriminators, on fresh translations or on the generator
        step's (``cfg.dis_fakes``). x_*: (N, 1, P)."""
        if self.cfg.dis_fakes == "same":
            x_ba, x_ab = self._fakes
        else:
            s_a, s_b = self._random_styles(x_a.shape[0])
            with torch.no_grad():
                x_ba = self.gen_a.decode(self.gen_b.enc_content(x_b), s_a)
                x_ab = self.gen_b.decode(self.gen_a.enc_content(x_a), s_b)
        loss = dis_loss(self.dis_a(x_ba), self.dis_a(x_a)) + dis_loss(
            self.dis_b(x_ab), self.dis_b(x_b)
        )
        total = self.cfg.gan_w * loss
        self.dis_opt.zero_grad(set_to_none=True)
        total.backward()
        self.dis_opt.step()
        return {"dis_total": total.item()}

    def step(
        self,
        x_a: torch.Tensor,
        x_b: torch.Tensor,
        w_a: torch.Tensor | None = None,
        w_b: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Generator update then discriminator update.

        Parameters
        ----------
        x_a, x_b : Tensor, shape (N, P) or (N, 1, P)
            Normalised flux of the synthetic (A) and observed (B) batches.
        w_a, w_b : Tensor, same shape, optional
            Per-pixel weights of the reconstruction losses.
        """
        x_a, x_b = _channels_first(x_a), _channels_first(x_b)
        w_a = None if w_a is None else _channels_first(w_a)
        w_b = None if w_b is None else _channels_first(w_b)
        metrics = self.gen_update(x_a, x_b, w_a, w_b)
        metrics.update(self.dis_update(x_a, x_b))
        return metrics


def _channels_first(x: torch.Tensor) -> torch.Tensor:
    return x[:, None, :] if x.ndim == 2 else x


def make_batch(cfg: ReferenceConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A random batch like normalised spectra: flux ~ 1 +- 0.05, weights 1. Arrays (N, P)."""
    rng = np.random.default_rng(seed)
    shape = (cfg.batch_size, cfg.pixels)
    return {
        "x_a": (1 + 0.05 * rng.standard_normal(shape)).astype(np.float32),
        "x_b": (1 + 0.05 * rng.standard_normal(shape)).astype(np.float32),
        "w_a": np.ones(shape, np.float32),
        "w_b": np.ones(shape, np.float32),
    }


def time_steps(
    trainer: ReferenceTrainer,
    batch: dict[str, np.ndarray],
    steps: int = 3,
    warmup: int = 1,
    count_flops: bool = True,
) -> dict[str, object]:
    """Time steady-state training steps of ``trainer`` on one fixed batch.

    The first warm-up step runs under torch's FLOP counter (matmuls and convolutions,
    forward and backward), so counting costs no extra step.

    Returns
    -------
    dict
        ``step_seconds`` (list, one per timed step), ``seconds_per_step`` (median),
        ``warmup_seconds`` (list) and ``counted_gflop_per_step`` (None when not counted).
    """
    tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
    warm, counted = [], None
    for i in range(warmup):
        t0 = time.perf_counter()
        if i == 0 and count_flops:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                trainer.step(**tensors)
            counted = counter.get_total_flops() / 1e9
        else:
            trainer.step(**tensors)
        warm.append(time.perf_counter() - t0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        trainer.step(**tensors)
        times.append(time.perf_counter() - t0)
    return {
        "step_seconds": times,
        "seconds_per_step": float(np.median(times)) if times else None,
        "warmup_seconds": warm,
        "counted_gflop_per_step": counted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=4800)
    parser.add_argument("--cycle", type=float, default=0.0, help="cycle loss weight")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    counts = check_paper_param_counts()
    print("paper parameter counts:", counts)
    cfg = ReferenceConfig(batch_size=args.batch, pixels=args.pixels, recon_x_cyc_w=args.cycle)
    trainer = ReferenceTrainer(cfg)
    result = time_steps(trainer, make_batch(cfg), args.steps, args.warmup)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
