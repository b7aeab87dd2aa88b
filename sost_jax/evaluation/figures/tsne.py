"""t-SNE embeddings of spectra or codes, coloured by group (paper Fig. 8).

`tsne_embedding` embeds several groups of vectors together; `plot_tsne_panels` draws
embeddings side by side (e.g. spectra, content codes, style codes), `plot_tsne` one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sost_jax.errors import InputError  # noqa: E402
from sost_jax.evaluation.figures.save import save_figure  # noqa: E402


def tsne_embedding(
    groups: Mapping[str, np.ndarray],
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    pca_dims: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D t-SNE embedding of several groups of vectors together.

    Parameters
    ----------
    groups : dict name -> [N_g, D]
        E.g. synthetic and observed spectra (D = P pixels) or their codes; all with the same
        D. Rows with a non-finite value are dropped.
    seed : int
        Seeds the subsampling and t-SNE.
    perplexity : float
        t-SNE perplexity; lowered to (points - 1) / 3 when there are few points.
    max_points : int
        Each group is subsampled (without replacement) to at most this many rows.
    pca_dims : int
        Vectors longer than this are first projected on their leading principal components.

    Returns
    -------
    xy : float64 [M, 2]
        Embedded points.
    group : int64 [M]
        Index of each point's group in ``groups``' order.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    parts, index = [], []
    dims = set()
    for g, (name, x) in enumerate(groups.items()):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(f"group {name!r} must be [N, D], got shape {x.shape}")
        dims.add(x.shape[1])
        x = x[np.isfinite(x).all(axis=1)]
        if len(x) > max_points:
            x = x[np.sort(rng.choice(len(x), max_points, replace=False))]
        parts.append(x)
        index.append(np.full(len(x), g, np.int64))
    if len(dims) > 1:
        raise InputError(f"all groups need the same vector length D, got {sorted(dims)}")
    x = np.concatenate(parts) if parts else np.zeros((0, 0))
    if len(x) < 4:
        raise InputError(f"t-SNE needs at least 4 finite points, got {len(x)}")
    if x.shape[1] > pca_dims:
        x = PCA(n_components=min(pca_dims, len(x)), random_state=seed).fit_transform(x)
    perplexity = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
    tsne = TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    )
    return tsne.fit_transform(x).astype(np.float64), np.concatenate(index)


def plot_tsne_panels(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    path: str | os.PathLike,
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    title: str = "",
    pdf: bool = True,
) -> list[Path]:
    """t-SNE embeddings side by side (paper Fig. 8), each panel with its own groups.

    Parameters
    ----------
    panels : dict panel title -> dict group name -> [N_g, D]
        E.g. ``{"spectra before": {"synthetic": ..., "observed": ...}, "content codes":
        {...}, "style codes": {...}}``; each panel is embedded on its own (`tsne_embedding`).
        A group name has the same colour in every panel.
    path : path
        Output file (suffix replaced by .png / .pdf).
    seed, perplexity, max_points
        As `tsne_embedding`.
    title : str
        Figure title.

    Returns
    -------
    list of written paths.
    """
    if not panels:
        raise InputError("no panels to draw")
    names: list[str] = []
    for groups in panels.values():
        names += [g for g in groups if g not in names]
    colours = {g: f"C{i % 10}" for i, g in enumerate(names)}
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, (panel, groups) in zip(axes[0], panels.items(), strict=True):
        xy, group = tsne_embedding(groups, seed, perplexity, max_points)
        for g, name in enumerate(groups):
            sel = group == g
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=4,
                alpha=0.6,
                color=colours[name],
                label=f"{name} ({sel.sum()})",
                rasterized=True,
            )
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, markerscale=3, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, pdf)


def plot_tsne(
    groups: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    seed: int = 0,
    perplexity: float = 30.0,
    max_points: int = 1000,
    title: str = "t-SNE embedding",
    pdf: bool = True,
) -> list[Path]:
    """One t-SNE embedding of all groups together, coloured by group (paper Fig. 8).

    Parameters
    ----------
    groups : dict name -> [N_g, D]
        E.g. ``{"synthetic": [N, P] spectra, "observed": [M, P] spectra}``.
    path : path
        Output file (suffix replaced by .png / .pdf).
    seed, perplexity, max_points
        As `tsne_embedding`.
    title : str
        Panel title.

    Returns
    -------
    list of written paths.
    """
    return plot_tsne_panels({title: groups}, path, seed, perplexity, max_points, "", pdf)
