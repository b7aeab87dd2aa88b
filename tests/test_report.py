"""``sost-jax evaluate``: catalogues against reference labels -> tables, figures, report."""

import csv
import json

import numpy as np

from sost_jax.cli import main


def _write(path, rows, names):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerows(rows)
    return str(path)


def test_evaluate_command_tabulates_each_catalogue_against_the_reference(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 300
    truth = np.column_stack(
        [rng.uniform(4000, 7000, n), rng.uniform(1, 5, n), rng.uniform(-1.5, 0.4, n)]
    )
    ids = [f"s{i}" for i in range(n)]
    ref = _write(
        tmp_path / "ref.csv",
        [[i, *t] for i, t in zip(ids, truth, strict=True)],
        ["id", "teff", "logg", "feh"],
    )
    names = ["id", "teff", "logg", "feh", "snr", "flags"]
    snr = rng.uniform(5, 200, n)
    good = truth + np.array([100.0, 0.1, 0.05]) + rng.normal(size=(n, 3)) * [50, 0.05, 0.02]
    bad = truth + rng.normal(size=(n, 3)) * [300, 0.5, 0.3]
    order = rng.permutation(n)[: n - 20]  # shuffled, 20 stars missing
    cats = []
    for name, est in (("good", good), ("bad", bad)):
        rows = [[ids[i], *est[i], snr[i], 0] for i in order]
        cats.append(_write(tmp_path / f"{name}.csv", rows, names))
    out = tmp_path / "eval"
    assert main(["evaluate", *cats, "--reference", ref, "--out", str(out), "--names", "A,B"]) == 0
    printed = capsys.readouterr().out
    assert "Teff [K]" in printed and "report:" in printed
    record = json.loads((out / "evaluation.json").read_text())
    flat = record["flat"]
    assert flat["A_teff_n"] == n - 20 and flat["B_feh_n"] == n - 20
    assert abs(flat["A_teff_bias"] - 100.0) < 15 and abs(flat["A_logg_bias"] - 0.1) < 0.02
    assert flat["B_teff_scatter"] > 4 * flat["A_teff_scatter"]
    report = (out / "report.md").read_text()
    assert "Fig. 11" in report and "Fig. 13" in report and "Fig. 14" in report
    for png in ("estimates_vs_reference", "differences_vs_snr", "bias_plane"):
        assert (out / "figures" / f"{png}.png").stat().st_size > 10_000
    # one name per catalogue
    assert main(["evaluate", *cats, "--reference", ref, "--out", str(out), "--names", "A"]) == 2
