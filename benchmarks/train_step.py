"""Benchmark: seconds per SOST training step, JAX against the PyTorch reference, same run.

Steady-state seconds per step (generator update then discriminator update) at the paper
configuration (batch 8 of 4800-pixel spectra), its achieved GFLOP/s (XLA's cost analysis of
the compiled step) against the machine's measured float32 matmul peak, and compile time
apart. When torch is installed, `torch_reference.py`'s channels-first PyTorch version of the
same network and step is timed in the same run, and rated with the same FLOP count.

    python benchmarks/train_step.py [--config paper] [--steps 3] [--warmup 1] [--no-torch]
                                    [--set model.conv_impl=xla ...]

Prints a table and writes benchmarks/results/train_step.json (a flat dict).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "train_step.json"
sys.path.insert(0, str(HERE))

from peak import jax_matmul_peak, torch_matmul_peak, write_result  # noqa: E402


def resolve_config_path(name: str | None) -> Path | None:
    """``--config``: a file path, or a name in ``configs/`` (paper, cpu, tiny, default).

    Returns None (the package defaults, which are the paper's sizes) when ``name`` is None
    or "paper" and there is no ``configs/paper.py``.
    """
    if name is None:
        return None
    path = Path(name)
    if path.suffix in (".py", ".json") and path.exists():
        return path
    candidate = ROOT / "configs" / f"{name}.py"
    if candidate.exists():
        return candidate
    if name in ("paper", "default"):
        return None
    raise SystemExit(f"no config {name!r}: neither a file nor configs/{name}.py")


def make_batch(batch_size: int, n_pixels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random spectra like normalised flux (1 +- 0.05) with unit weights; arrays [B, P]."""
    rng = np.random.default_rng(seed)
    shape = (batch_size, n_pixels)
    return {
        "x_a": (1 + 0.05 * rng.standard_normal(shape)).astype(np.float32),
        "x_b": (1 + 0.05 * rng.standard_normal(shape)).astype(np.float32),
        "w_a": np.ones(shape, np.float32),
        "w_b": np.ones(shape, np.float32),
    }


def xla_flops(compiled: Any) -> float | None:
    """FLOPs of a compiled computation from XLA's cost analysis (dict or list of dicts)."""
    cost = compiled.cost_analysis()
    if cost is None:
        return None
    if isinstance(cost, dict):
        cost = [cost]
    flops = [c.get("flops") for c in cost if c and c.get("flops") is not None]
    return float(sum(flops)) if flops else None


def jax_param_counts(state: Any) -> dict[str, int]:
    """Parameter counts of domain a's encoders, decoder (with MLP) and discriminator."""
    from sost_jax.sost.models import count_params

    gen = state.gen_params["a"]
    enc = sum(count_params(v) for k, v in gen.items() if k in ("content", "style"))
    return {
        "encoders": enc,
        "decoder": count_params(gen) - enc,
        "discriminator": count_params(state.dis_params["a"]),
    }


def run_jax(config: Any, batch: dict[str, np.ndarray], steps: int, warmup: int) -> dict[str, Any]:
    """Compile the train step (timed apart), count its FLOPs, time steady-state steps."""
    from sost_jax.sost import training

    state = training.create_train_state(
        config, jax.random.PRNGKey(config.train.seed), batch["x_a"].shape[1]
    )
    counts = jax_param_counts(state)
    batch = dict(batch)
    if config.loss.paired > 0:  # the paired term's batch: observed stars and their partners
        batch.update(x_p=batch["x_b"], w_p=batch["w_b"], p=batch["x_a"], pw=batch["w_a"])
    constants = None
    if config.loss.mean_gap > 0:  # the domains' mean difference, fixed before training
        constants = {"mean_gap": batch["x_b"].mean(0) - batch["x_a"].mean(0)}
    step = training.make_train_step(config, None, constants)
    device_batch = {k: jax.numpy.asarray(v) for k, v in batch.items()}
    t0 = time.perf_counter()
    compiled = step.lower(state, device_batch).compile()
    compile_seconds = time.perf_counter() - t0
    flops = xla_flops(compiled)
    warm, times = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        state, metrics = compiled(state, device_batch)
        jax.block_until_ready((state, metrics))
        (warm if i < warmup else times).append(time.perf_counter() - t0)
    finite = all(np.isfinite(float(v)) for v in metrics.values())
    return {
        "compile_seconds": compile_seconds,
        "gflop_per_step": None if flops is None else flops / 1e9,
        "step_seconds": times,
        "warmup_seconds": warm,
        "seconds_per_step": statistics.median(times) if times else None,
        "param_counts": counts,
        "finite": finite,
    }


def reference_config(config: Any, batch_size: int, n_pixels: int) -> Any:
    """The `torch_reference.ReferenceConfig` of a sost_jax config (same sizes and weights)."""
    from torch_reference import ReferenceConfig

    if config is None:
        return ReferenceConfig(batch_size=batch_size, pixels=n_pixels)
    m, d, loss, t = config.model, config.dis, config.loss, config.train
    if m.down_stride != 2 or m.kernel_res != 7 or m.style_kernel != 7:
        raise ValueError("the torch reference has stride 2 and kernels of 7 only")
    return ReferenceConfig(
        dim=m.dim,
        n_downsample=m.n_down,
        n_res=m.n_res,
        style_dim=m.style_dim,
        mlp_dim=m.mlp_dim,
        dis_dim=d.dim,
        dis_n_layer=d.n_layers,
        dis_n_scales=d.n_scales,
        pixels=n_pixels,
        batch_size=batch_size,
        gan_w=loss.gan,
        recon_x_w=loss.recon_x,
        recon_c_w=loss.recon_c,
        recon_s_w=loss.recon_s,
        recon_x_cyc_w=loss.cycle,
        lr=t.lr,
        beta1=t.beta1,
        beta2=t.beta2,
        weight_decay=t.weight_decay,
        pad_mode=m.pad_mode,
        dis_fakes=t.dis_fakes,
    )


def run_torch(ref_cfg: Any, batch: dict[str, np.ndarray], steps: int, warmup: int) -> dict:
    """Time the PyTorch reference step (all cores); the first warm-up step counts FLOPs."""
    import torch
    from torch_reference import ReferenceTrainer, param_counts, time_steps

    torch.set_num_threads(os.cpu_count() or 1)
    trainer = ReferenceTrainer(ref_cfg)
    out = time_steps(trainer, batch, steps, warmup, count_flops=warmup > 0)
    out["param_counts"] = param_counts(ref_cfg)
    out["version"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    return out


def _fmt(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``, or "-" right-aligned to the spec's width."""
    if value is not None:
        return format(value, spec)
    width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
    return "-".rjust(int(width) if width else 1)


def print_table(r: dict[str, Any]) -> None:
    """The side-by-side table of a result dict (see `main`)."""
    peak = r["peak_gflops_per_s"]
    rows = [
        (
            "JAX (XLA)",
            r["seconds_per_step"],
            r["min_seconds_per_step"],
            r["gflops_per_s"],
            r["compile_seconds"],
        ),
        (
            "PyTorch reference",
            r["torch_seconds_per_step"],
            r["torch_min_seconds_per_step"],
            r["torch_gflops_per_s"],
            None,
        ),
    ]
    print()
    print(
        f"SOST train step: batch {r['batch_size']} x {r['n_pixels']} px, config "
        f"{r['config']}, {r['cpu_count']} cores, {r['steps']} timed steps after "
        f"{r['warmup']} warm-up"
    )
    print(
        f"float32 matmul peak: XLA {peak:.1f} GFLOP/s, torch "
        f"{_fmt(r['torch_peak_gflops_per_s'], '.1f')} GFLOP/s"
    )
    print(
        f"XLA FLOPs per step: {_fmt(r['gflop_per_step'], '.1f')} GFLOP "
        f"(torch's counter on its step: {_fmt(r['torch_counted_gflop_per_step'], '.1f')})"
    )
    header = f"{'implementation':<20}{'s/step':>9}{'min s':>9}{'GFLOP/s':>10}{'% peak':>8}"
    header += f"{'compile s':>11}"
    print(header)
    print("-" * len(header))
    for name, sec, best, rate, comp in rows:
        frac = None if rate is None else 100 * rate / peak
        print(
            f"{name:<20}{_fmt(sec, '9.2f')}{_fmt(best, '9.2f')}{_fmt(rate, '10.1f')}"
            f"{_fmt(frac, '8.0f')}{_fmt(comp, '11.1f')}"
        )
    if r["speedup_vs_torch"] is not None:
        print(
            f"JAX speed-up over PyTorch: {r['speedup_vs_torch']:.2f}x (torch s/step / JAX s/step)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper", help="configs/NAME.py or a file path")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. model.conv_impl=xla (repeatable)",
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    parser.add_argument("--batch", type=int, default=None, help="default: train.batch_size")
    parser.add_argument("--pixels", type=int, default=None, help="default: the config's grid")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX step")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    t_start = time.perf_counter()
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"note: load average {load:.1f} before starting; other work skews the timings")

    config, missing = None, None
    try:
        from sost_jax.config import load_config, validate
        from sost_jax.sost import training  # noqa: F401

        config = load_config(resolve_config_path(args.config), args.set)
        n_pixels = args.pixels or int(validate(config).preprocess.wave.size)
        batch_size = args.batch or int(config.train.batch_size)
    except ImportError as err:
        missing = f"{err}"
        print(f"JAX side unavailable ({missing}); timing the PyTorch reference only")
        n_pixels, batch_size = args.pixels or 4800, args.batch or 8
    batch = make_batch(batch_size, n_pixels)

    try:
        import torch  # noqa: F401

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
        print("torch is not installed: no reference timing (pip install torch)")

    print("measuring the float32 matmul peak ...", flush=True)
    peak = jax_matmul_peak()
    jax_out: dict[str, Any] = {}
    if config is not None and not args.no_jax:
        print("JAX: compiling and timing the train step ...", flush=True)
        jax_out = run_jax(config, batch, args.steps, args.warmup)
    torch_peak, torch_out = None, {}
    if have_torch:
        torch_peak = torch_matmul_peak()
        print("PyTorch reference: timing the same step ...", flush=True)
        torch_out = run_torch(
            reference_config(config, batch_size, n_pixels), batch, args.steps, args.warmup
        )

    gflop = jax_out.get("gflop_per_step")
    sec, tsec = jax_out.get("seconds_per_step"), torch_out.get("seconds_per_step")
    counts, tcounts = jax_out.get("param_counts"), torch_out.get("param_counts")
    result = {
        "config": args.config,
        "overrides": ",".join(args.set),
        "batch_size": batch_size,
        "n_pixels": n_pixels,
        "steps": args.steps,
        "warmup": args.warmup,
        "seconds_per_step": sec,
        "min_seconds_per_step": min(jax_out["step_seconds"]) if sec else None,
        "step_seconds": jax_out.get("step_seconds"),
        "compile_seconds": jax_out.get("compile_seconds"),
        "first_step_seconds": (jax_out.get("warmup_seconds") or [None])[0],
        "gflop_per_step": gflop,
        "gflops_per_s": gflop / sec if gflop and sec else None,
        "peak_gflops_per_s": peak,
        "fraction_of_peak": gflop / sec / peak if gflop and sec else None,
        "losses_finite": jax_out.get("finite"),
        "torch_seconds_per_step": tsec,
        "torch_min_seconds_per_step": min(torch_out["step_seconds"]) if tsec else None,
        "torch_step_seconds": torch_out.get("step_seconds"),
        "torch_gflops_per_s": gflop / tsec if gflop and tsec else None,
        "torch_counted_gflop_per_step": torch_out.get("counted_gflop_per_step"),
        "torch_peak_gflops_per_s": torch_peak,
        "torch_threads": torch_out.get("threads"),
        "speedup_vs_torch": tsec / sec if sec and tsec else None,
        "param_counts_match": counts == tcounts if counts and tcounts else None,
        "encoder_params": (counts or tcounts or {}).get("encoders"),
        "decoder_params": (counts or tcounts or {}).get("decoder"),
        "discriminator_params": (counts or tcounts or {}).get("discriminator"),
        "jax_missing": missing,
        "jax_version": jax.__version__,
        "torch_version": torch_out.get("version"),
        "jax_backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "machine": platform.processor() or platform.machine(),
        "benchmark_seconds": None,
    }
    if counts and tcounts and counts != tcounts:
        print(f"WARNING: parameter counts differ: JAX {counts}, torch {tcounts}")
    result["benchmark_seconds"] = time.perf_counter() - t_start
    print_table(result)
    write_result(args.out, result, t_start)


if __name__ == "__main__":
    main()
