"""Make the reference-equivalence fixture from the public PyTorch code's own modules.

Imports ``models.py`` of the reference (github zeyangyan/SOST) from the folder you give,
loads deterministic weights into its Encoder, Decoder and MultiDiscriminator
(`sost_jax.sost.reference_port.check_weights`, so the fixture stores the seed and the entries'
names and shapes rather than millions of weights), runs them on fixed inputs, and writes
``tests/data/reference_fixture.npz``:

- per case (``n2``: 2 down-samplings at 256 pixels; ``n3``: 3 at 260): the inputs, the
  random styles, content and style codes, the in-domain reconstruction, the translation
  ``Dec(content, random style)`` and the three discriminator outputs;
- the parameter counts of the reference's modules at the paper's sizes (width 64, 2
  down-samplings, 3 residual blocks, style 8).

`tests/test_reference_port.py` (no torch needed) reproduces every output with sost-jax
under ``configs/reference.py`` to 1e-4. Run once, with torch installed:

    python benchmarks/reference_fixture.py --reference /path/to/SOST [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

from sost_jax.sost.reference_port import check_weights

ROOT = Path(__file__).resolve().parents[1]
#: Generator sizes of the two cases (the discriminator's sizes are fixed in the reference).
CASES = {
    "n2": {"dim": 8, "n_residual": 2, "n_downsample": 2, "style_dim": 4, "pixels": 256},
    "n3": {"dim": 4, "n_residual": 1, "n_downsample": 3, "style_dim": 3, "pixels": 260},
}
PAPER = {"dim": 64, "n_residual": 3, "n_downsample": 2, "style_dim": 8}


def load_reference(folder: Path):
    """The reference's ``models`` module, imported from ``folder/models.py``."""
    path = folder / "models.py"
    if not path.exists():
        raise SystemExit(f"{path} not found: give the folder of the reference code (--reference)")
    spec = importlib.util.spec_from_file_location("sost_reference_models", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def entries(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of a module's parameters, in registration order."""
    return [(name, tuple(p.shape)) for name, p in module.named_parameters()]


def load_weights(module: torch.nn.Module, seed: int) -> list[tuple[str, tuple[int, ...]]]:
    """Fill ``module`` with `check_weights`; return its entries."""
    listed = entries(module)
    weights = check_weights(listed, seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(weights[name]))
    return listed


def spectra(rng: np.random.Generator, n: int, pixels: int) -> np.ndarray:
    """Spectrum-like inputs [n, pixels]: 1 minus Gaussian lines, plus noise."""
    x = np.arange(pixels)
    flux = np.ones((n, pixels))
    for i in range(n):
        for _ in range(12):
            centre, depth, width = rng.uniform(0, pixels), rng.uniform(0.1, 0.8), rng.uniform(1, 4)
            flux[i] -= depth * np.exp(-0.5 * ((x - centre) / width) ** 2)
    return (flux + rng.normal(0.0, 0.02, flux.shape)).astype(np.float32)


def run_case(ref, name: str, sizes: dict, seed: int) -> dict[str, np.ndarray]:
    gen = {k: sizes[k] for k in ("dim", "n_residual", "n_downsample", "style_dim")}
    enc = ref.Encoder(**gen)
    dec = ref.Decoder(
        dim=sizes["dim"],
        n_residual=sizes["n_residual"],
        n_upsample=sizes["n_downsample"],
        style_dim=sizes["style_dim"],
    )
    dis = ref.MultiDiscriminator()
    out = {}
    for part, module, offset in (("enc", enc, 1), ("dec", dec, 2), ("dis", dis, 3)):
        listed = load_weights(module, seed * 10 + offset)
        out[f"{name}_{part}_entries"] = np.array(json.dumps(listed))
        out[f"{name}_{part}_seed"] = np.array(seed * 10 + offset)
    rng = np.random.default_rng(seed)
    x = spectra(rng, 2, sizes["pixels"])
    style = rng.normal(size=(2, sizes["style_dim"])).astype(np.float32)
    with torch.no_grad():
        xt = torch.from_numpy(x)[:, None, :]
        content, own = enc(xt)
        out[f"{name}_x"] = x
        out[f"{name}_style_random"] = style
        out[f"{name}_content"] = content.numpy().transpose(0, 2, 1)  # [B, L, C]
        out[f"{name}_style"] = own.numpy()[:, :, 0]
        out[f"{name}_recon"] = dec(content, own).numpy()[:, 0, :]
        out[f"{name}_translated"] = dec(content, torch.from_numpy(style)[:, :, None]).numpy()[:, 0]
        for i, d in enumerate(dis(xt)):
            out[f"{name}_dis{i}"] = d.numpy().transpose(0, 2, 1)  # [B, L_s, 1]
    return out


def paper_counts(ref) -> dict[str, int]:
    """Parameter counts of the reference's own modules at the paper's sizes."""
    enc = ref.Encoder(**PAPER)
    dec = ref.Decoder(dim=64, n_residual=3, n_upsample=2, style_dim=8)

    def count(m: torch.nn.Module) -> int:
        return int(sum(p.numel() for p in m.parameters()))

    return {
        "paper_count_content": count(enc.content_encoder),
        "paper_count_style": count(enc.style_encoder),
        "paper_count_decoder": count(dec),
        "paper_count_discriminator": count(ref.MultiDiscriminator()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="folder with models.py")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "tests" / "data" / "reference_fixture.npz"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    ref = load_reference(args.reference)
    arrays: dict[str, np.ndarray] = {}
    for i, (name, sizes) in enumerate(CASES.items()):
        arrays.update(run_case(ref, name, sizes, args.seed + i))
        arrays[f"{name}_sizes"] = np.array(json.dumps(sizes))
    counts = paper_counts(ref)
    arrays.update({k: np.array(v) for k, v in counts.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{'what':<28} value")
    for key, value in counts.items():
        print(f"{key:<28} {value:,}")
    for name in CASES:
        shapes = {k: arrays[f"{name}_{k}"].shape for k in ("content", "style", "recon")}
        print(f"{name:<28} {shapes}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
