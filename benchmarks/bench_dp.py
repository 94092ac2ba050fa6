"""Benchmark of the DP release: accuracy against the two obvious strategies, the BLUE, the peers in
PEERS (diffprivlib, OpenDP, Tumult Analytics), the trade-off over level weights, and the
1,000,000-cell speed run.

    .venv/bin/python benchmarks/bench_dp.py [--reps 10] [--eps 0.1 0.5 1 2] [--no-speed]
                                             [--speed-only] [--gaussian-only] [--no-gaussian]

Table: the shape the PEERS figures were measured on (17 regions x 30 citizenships x 6 age groups
x 2 sexes = 6,120 inner cells; Zipf-like region and citizenship sizes, log-normal region x
citizenship interaction, negative-binomial counts with k = 0.6, expected total 163,000 persons;
this draw: 152,841). Every strategy publishes every cell of the full cube (inner cells and all
marginals, 11,718 cells).

Strategies (same pure epsilon, one person = one inner cell):
  (a)   discrete Laplace on every published cell, the budget split equally over the 16 cuboids
        (inner, 1-, 2-, 3-way marginals, grand total), clipped at 0: not additive.
  (b)   discrete Laplace on the inner cells only (all of epsilon), clipped at 0, marginals summed:
        what OpenDP / Tumult / diffprivlib give for a plain group-by count + clip.
  (b')  as (b) but marginals summed from the UNclipped cells (not additive, cells clipped).
  ours  disclosure.noise: hierarchical measurements (75 % inner, 5 % total, 20 % one-way
        margins split by the square root of their number of cells), WLS (BLUE), top-down integer non-negative additive post-processing.
  BLUE  the float weighted-least-squares estimate of ours, before post-processing.

Gaussian vs Laplace ("zCDP" section): ours with ``mechanism: gaussian`` at the rho whose
(epsilon, delta = 1e-6) is the Laplace run's epsilon (rho = (sqrt(ln(1/delta) + eps) -
sqrt(ln(1/delta)))^2, from epsilon = rho + 2 sqrt(rho ln(1/delta))), beside the Laplace at that
pure epsilon (which is also (epsilon, delta)-DP), and at equal rho (a Laplace at epsilon costs
epsilon^2/2 of a rho budget): MAE and RMSE of inner cells, first-level totals and the grand
total, and the coverage of the stated 95 % interval [obs_lower, obs_upper] by simulation.

Accuracy runs use the seeded test sampler (same distribution as OpenDP's, reproducible); the
speed run uses the production path (OpenDP, rng=None). Error figures: mean absolute error over
cells and repetitions; "1st-level margins" = one dimension at its first hierarchy level, the
others at their total (here: the 17 + 30 + 6 + 2 one-way totals); "reg+cit" = the 47 region and
citizenship totals for which PEERS gives the peers' error.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from disclosure.dp_mechanism import SeededSampler  # noqa: E402
from disclosure.noise import (  # noqa: E402
    allocation,
    gaussian_mechanism,
    protect_noise,
    release,
    zcdp_epsilon,
    zcdp_rho_for,
)
from disclosure.table import CellTable, aggregate  # noqa: E402
from publisher.specs import spec_from_mapping  # noqa: E402

# Peer figures, measured once and copied here (those libraries are not dependencies of Ashyq):
# diffprivlib 0.6.5 (github.com/IBM/differential-privacy-library), OpenDP 0.16.0 (opendp.org),
# Tumult Analytics 0.21.0 / tmlt.core 0.19.1 (tmlt.dev), on a table drawn from the distribution
# of note_table() (that draw: 163,478 persons; note_table(): 152,841), one person = one inner
# cell, pure eps = 0.1 / 0.5 / 1 / 2 for the whole table set, mean over 20 repetitions,
# marginals = the 17 region and 30 citizenship totals and the grand total.
# "note (x)" labels a peer row:
#   (a)            discrete Laplace on the cells and on each of the three marginal groups,
#                  eps/4 each, clipped at 0;
#   (b), (d), (e)  noise on the cells only, clipped at 0, marginals summed (each library's
#                  plain group-by count);
#   (b'')          cells only, then top-down non-negative integer post-processing;
#   (c)            70 % cells / 12.5 % region / 12.5 % citizenship / 5 % grand total, WLS,
#                  top-down, controlled rounding.
# Each entry: (cells MAE, region+citizenship totals MAE, grand-total abs error), per eps.
PEERS = {
    "note (a) diffprivlib Geometric eps/4 x4 groups, clip": (
        (23.64, 5.54, 2.93, 1.51), (41.5, 8.0, 4.1, 2.0), (36, 8, 3, 2)),
    "note (b) diffprivlib histogramdd, clip, sum": (
        (6.76, 1.51, 0.70, 0.23), (833.8, 107.2, 39.1, 12.6), (19587, 2486, 897, 269)),
    "note (d) OpenDP discrete Laplace, clip, sum": (
        (6.77, 1.52, 0.70, 0.23), (842.3, 110.3, 41.2, 12.5), (19778, 2571, 939, 262)),
    "note (e) Tumult group-by count, clip, sum": (
        (6.78, 1.51, 0.70, 0.24), (840.2, 109.6, 41.6, 12.6), (19699, 2557, 956, 274)),
    "note (b'') cells only + top-down": (
        (5.47, 1.47, 0.73, 0.26), (180.0, 35.5, 17.1, 7.6), (918, 208, 68, 42)),
    "note (c) 70/12.5/12.5/5 + WLS + top-down": (
        (6.92, 2.02, 1.06, 0.47), (75.9, 15.9, 7.6, 3.7), (154, 41, 13, 11)),
}
NOTE_EPS = (0.1, 0.5, 1.0, 2.0)
# ours with the allocation of peer row (c) (70 % cells, 12.5 % region and citizenship totals,
# 5 % grand total, nothing on age and sex): that row's design, run with our code.
NOTE_LIKE = "ours, note's 70/12.5/12.5/5 weights"
NOTE_LIKE_WEIGHTS = {"inner": 0.70, "total": 0.05, "region": 0.125, "citizenship": 0.125,
                     "age": 0.0, "sex": 0.0, "margins": 0.0}


def note_table(seed: int = 20240601) -> CellTable:
    rng = np.random.default_rng(seed)
    r, c, a = 17, 30, 6
    spec = spec_from_mapping({
        "id": "bench", "title": {"en": "bench"},
        "dimensions": [
            {"name": "region", "codes": [f"R{i:02d}" for i in range(r)]},
            {"name": "citizenship", "codes": [f"C{i:02d}" for i in range(c)]},
            {"name": "age", "codes": [f"A{i}" for i in range(a)]},
            {"name": "sex", "codes": ["F", "M"]},
        ],
        "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}},
    })
    rw = 1 / np.arange(1, r + 1) ** 0.9
    cw = 1 / np.arange(1, c + 1) ** 1.3
    inter = np.exp(rng.normal(0, 1.0, (r, c)))
    aw = rng.dirichlet(np.full(a, 4.0))
    sw = np.array([0.48, 0.52])
    mu = np.einsum("i,j,ij,k,l->ijkl", rw, cw, inter, aw, sw)
    mu = mu / mu.sum() * 163_000
    k = 0.6
    inner = rng.negative_binomial(k, k / (k + mu))
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))


def cell_classes(table: CellTable) -> dict[str, np.ndarray]:
    hs = table.hierarchies
    depth = [np.array([h.depth[c] for c in h.codes]) for h in hs]
    grids = table.code_arrays()
    d = [dep[g] for dep, g in zip(depth, grids, strict=True)]
    at_total = [x == 0 for x in d]
    first = np.zeros(table.n_cells, dtype=bool)
    for i in range(len(hs)):
        m = d[i] == 1
        for j in range(len(hs)):
            if j != i:
                m &= at_total[j]
        first |= m
    regcit = first & (at_total[2] & at_total[3]) if len(hs) == 4 else first
    gt = np.zeros(table.n_cells, dtype=bool)
    gt[table.cell_id({})] = True
    return {"inner": table.inner_mask, "first": first, "regcit": regcit, "gt": gt,
            "all": np.ones(table.n_cells, dtype=bool)}


def dlap(rng: np.random.Generator, scale: float, size: int) -> np.ndarray:
    p = 1 - math.exp(-1 / scale)
    return rng.geometric(p, size) - rng.geometric(p, size)


def cuboid_ids(table: CellTable) -> np.ndarray:
    """Cuboid number of every cell (which dimensions are at their total)."""
    grids = table.code_arrays()
    out = np.zeros(table.n_cells, dtype=np.int64)
    for i, g in enumerate(grids):
        out |= (g == 0).astype(np.int64) << i
    return out


def strategy_a(table: CellTable, eps: float, rng: np.random.Generator) -> np.ndarray:
    n_cub = 2 ** len(table.hierarchies)
    return np.maximum(table.values + dlap(rng, n_cub / eps, table.n_cells), 0)


def strategy_b(table: CellTable, eps: float, rng: np.random.Generator, clip: bool) -> np.ndarray:
    hs = table.hierarchies
    shape = tuple(len(h.leaves) for h in hs)
    inner = table.values[table.inner_mask].reshape(shape)
    noisy = inner + dlap(rng, 1 / eps, inner.size).reshape(shape)
    full = aggregate(table.spec, np.maximum(noisy, 0) if clip else noisy).reshape(-1)
    if not clip:  # (b'): the cells themselves are still published clipped
        full[table.inner_mask] = np.maximum(full[table.inner_mask], 0)
    return full


def errors(values: np.ndarray, truth: np.ndarray, cls: dict[str, np.ndarray]) -> dict[str, float]:
    e = values - truth
    return {"inner": float(np.abs(e[cls["inner"]]).mean()),
            "first": float(np.abs(e[cls["first"]]).mean()),
            "regcit": float(np.abs(e[cls["regcit"]]).mean()),
            "gt": float(np.abs(e[cls["gt"]]).mean()),
            "gt_bias": float(e[cls["gt"]].mean()),
            "all": float(np.abs(e).mean())}


def mean_dicts(ds: list[dict]) -> dict:
    return {k: float(np.mean([d[k] for d in ds])) for k in ds[0]}


def run_ours(table: CellTable, eps: float, seed: int, weights: dict | None = None):
    shares = allocation(table, weights)
    return release(table, eps, 1, shares, SeededSampler(seed))


def accuracy(table: CellTable, eps_list: list[float], reps: int) -> dict:
    cls = cell_classes(table)
    truth = table.values
    results = {}
    print(f"\n## Accuracy (mean over {reps} repetitions; seeded sampler)\n")
    print("| eps | strategy | inner MAE | 1st-level margins MAE | reg+cit MAE | grand total |err| "
          "[bias] | all cells MAE | add/nonneg/int | s/rep |")
    print("|---:|---|---:|---:|---:|---:|---:|:-:|---:|")
    moe_lines: list[str] = []
    for eps in eps_list:
        rows: dict[str, list] = {k: [] for k in ("a", "b", "b'", "ours", "BLUE", NOTE_LIKE)}
        coverage: list[tuple] = []
        times: dict[str, float] = dict.fromkeys(rows, 0.0)
        for rep in range(reps):
            rng = np.random.default_rng(1000 + rep)
            t = time.perf_counter()
            rows["a"].append(errors(strategy_a(table, eps, rng), truth, cls))
            times["a"] += time.perf_counter() - t
            t = time.perf_counter()
            rows["b"].append(errors(strategy_b(table, eps, rng, clip=True), truth, cls))
            times["b"] += time.perf_counter() - t
            rows["b'"].append(errors(strategy_b(table, eps, rng, clip=False), truth, cls))
            t = time.perf_counter()
            rel = run_ours(table, eps, 5000 + rep)
            times["ours"] += time.perf_counter() - t
            assert table.check_additive(rel.values) and (rel.values >= 0).all()
            rows["ours"].append(errors(rel.values, truth, cls))
            rows["BLUE"].append(errors(rel.blue, truth, cls))
            if NOTE_LIKE_WEIGHTS:
                rows[NOTE_LIKE].append(errors(run_ours(table, eps, 9000 + rep,
                                                       NOTE_LIKE_WEIGHTS).values, truth, cls))
            covered = np.abs(rel.values - truth) <= rel.moe
            held = (rel.lower <= truth) & (truth <= rel.upper)
            coverage.append((held.mean(), held[cls["inner"]].mean(), held[cls["first"]].mean(),
                             float(np.mean(rel.upper - rel.lower)),
                             covered.mean(), covered[cls["inner"]].mean(), rel.moe.mean(),
                             float(np.median(rel.moe[cls["inner"]]))))
        flags = {"a": "n/y/y", "b": "y/y/y", "b'": "n/y/y", "ours": "y/y/y", "BLUE": "y/n/n",
                 NOTE_LIKE: "y/y/y"}
        res = {k: mean_dicts(v) for k, v in rows.items()}
        results[eps] = res
        for k, m in res.items():
            print(f"| {eps:g} | {k} | {m['inner']:.2f} | {m['first']:.1f} | {m['regcit']:.1f} | "
                  f"{m['gt']:.1f} [{m['gt_bias']:+.1f}] | {m['all']:.2f} | {flags[k]} | "
                  f"{(f'{times[k] / reps:.3f}' if k in times and times[k] else '–')} |")
        cov = np.mean(np.array(coverage), axis=0)
        moe_lines.append(f"| {eps:g} | {cov[0]:.4f} | {cov[1]:.4f} | {cov[2]:.4f} | {cov[3]:.1f} | "
                         f"{cov[4]:.4f} | {cov[5]:.4f} | {cov[6]:.1f} | {cov[7]:.1f} |")
        res["coverage"] = float(cov[0])
        if eps in NOTE_EPS:
            i = NOTE_EPS.index(eps)
            for name, (cells, marg, gt) in PEERS.items():
                print(f"| {eps:g} | {name} | {cells[i]:.2f} | – | {marg[i]:.1f} | {gt[i]:.0f} | – | "
                      "– | – |")
    print("\n## 95 % interval [obs_lower, obs_upper] and margin of error (obs_moe) of ours: "
          "share of cells whose true count they hold\n")
    print("| eps | interval, all cells | interval, inner | interval, 1st-level | mean width | "
          "value ± obs_moe, all | value ± obs_moe, inner | mean MOE | median inner MOE |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(moe_lines))
    return results


def targets(results: dict) -> None:
    if 1.0 not in results:
        return
    r = results[1.0]
    o, b, bp, blue = r["ours"], r["b"], r["b'"], r["BLUE"]
    print("\n## Targets at epsilon 1\n")
    print("| check | value | target | ok |")
    print("|---|---:|---:|:-:|")
    checks = [
        ("inner MAE ours / (b)", o["inner"] / b["inner"], 1.5, "<="),
        ("1st-level margins MAE ours / (b)", o["first"] / b["first"], 0.5, "<="),
        ("grand total |err| ours / (b)", o["gt"] / b["gt"], 0.25, "<="),
        ("(info) 1st-level margins ours / (b') unclipped sums", o["first"] / bp["first"], 1.0, "<="),
        ("(info) grand total ours / (b') unclipped sums", o["gt"] / bp["gt"], 0.5, "<="),
        ("inner MAE ours / BLUE", o["inner"] / blue["inner"], 1.05, "<="),
        ("1st-level margins MAE ours / BLUE", o["first"] / blue["first"], 1.05, "<="),
        ("grand total |err| ours / BLUE", o["gt"] / blue["gt"], 1.05, "<="),
        ("all cells MAE ours / BLUE", o["all"] / blue["all"], 1.05, "<="),
    ]
    cov = r.get("coverage")
    if cov is not None:  # the 95 % range: tight and still honest
        checks += [("95 % range coverage, all cells", cov, 0.95, ">="),
                   ("95 % range coverage, all cells", cov, 0.965, "<=")]
    for name, v, t, op in checks:
        ok = v <= t if op == "<=" else v >= t
        print(f"| {name} | {v:.3f} | {op} {t} | {'yes' if ok else 'NO'} |")


def tradeoff(table: CellTable, reps: int, eps: float = 1.0) -> None:
    """The frontier inner-cell error vs first-level error over allocations; the default's row is
    marked. Margin splits: equal over the one-way groups, by sqrt(number of cells) (the default
    rule), and the research note's (region and citizenship only)."""
    from disclosure import dp_estimate as est
    from disclosure.noise import DEFAULT_WEIGHTS

    cls = cell_classes(table)
    groups = est.marginal_groups(table.hierarchies)
    print(f"\n## Frontier over allocations at epsilon {eps:g} (grand total 5 %, margins = the "
          "rest)\n")
    print("| margin split | inner share | inner MAE | 1st-level MAE | reg+cit MAE | "
          "grand total |err| | inner / BLUE | 1st-level / BLUE | default |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|:-:|")

    def split(kind: str, m: float) -> dict:
        if kind == "sqrt(cells) (default rule)":
            return {"margins": m}
        if kind == "equal":
            return {g.name: m / len(groups) for g in groups}
        big = [g.name for g in groups if g.name.split("@")[0] in ("region", "citizenship")]
        return {g.name: (m / len(big) if g.name in big else 0.0) for g in groups}

    rows = []
    for kind in ("equal", "sqrt(cells) (default rule)", "region+citizenship only (note)"):
        for w in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
            weights = {"inner": w, "total": 0.05, "margins": 0.0} | split(kind, 0.95 - w)
            ours, blue = [], []
            for rep in range(reps):
                rel = run_ours(table, eps, 7000 + rep, weights)
                ours.append(errors(rel.values, table.values, cls))
                blue.append(errors(rel.blue, table.values, cls))
            o, b = mean_dicts(ours), mean_dicts(blue)
            default = kind.endswith("(default rule)") and math.isclose(w, DEFAULT_WEIGHTS["inner"])
            rows.append((o["inner"], o["first"], default))
            print(f"| {kind} | {w:.2f} | {o['inner']:.3f} | {o['first']:.2f} | {o['regcit']:.2f} "
                  f"| {o['gt']:.1f} | {o['inner'] / b['inner']:.3f} | "
                  f"{o['first'] / b['first']:.3f} | {'**yes**' if default else ''} |")
    d = next(r for r in rows if r[2])
    better = [r for r in rows if r[0] < d[0] - 0.01 and r[1] < d[1] - 0.2]
    print(f"\nallocations that beat the default on both inner and first-level error "
          f"(by more than 0.01 / 0.2): {len(better)} of {len(rows) - 1}")


def gaussian_vs_laplace(table: CellTable, eps_list: list[float], reps: int) -> None:
    """Ours with the discrete Gaussian (zCDP) beside the discrete Laplace (pure DP), at equal
    (epsilon, delta = 1e-6) and at equal rho; seeded samplers of both distributions."""
    cls = cell_classes(table)
    truth = table.values
    shares = allocation(table)
    print(f"\n## zCDP: Gaussian beside Laplace (mean over {reps} repetitions; seeded samplers; "
          "default allocation)\n")
    print("equal (eps, delta): Gaussian at rho = rho(eps, delta=1e-6), Laplace at pure eps; "
          "equal rho: Laplace at eps = sqrt(2 rho) (it costs eps^2/2 = rho of a rho budget)\n")
    print("| eps (delta 1e-6) | mechanism | budget | inner MAE | inner RMSE | 1st-level MAE | "
          "1st-level RMSE | grand total MAE | grand total RMSE | interval coverage inner | "
          "interval coverage 1st-level | interval coverage all | median inner MOE |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for eps in eps_list:
        rho = zcdp_rho_for(eps)
        eps_rho = math.sqrt(2 * rho)  # the Laplace whose epsilon^2/2 is rho
        runs = [("Laplace", f"eps {eps:g}", lambda seed, e=eps: release(
                    table, e, 1, shares, SeededSampler(seed))),
                ("Gaussian", f"rho {rho:.4g}", lambda seed, r=rho: release(
                    table, r, 1, shares, gaussian_mechanism(seed))),
                ("Laplace, equal rho", f"eps {eps_rho:.3g}",
                 lambda seed, e=eps_rho: release(
                     table, e, 1, shares, SeededSampler(seed)))]
        assert math.isclose(zcdp_epsilon(rho), eps, rel_tol=1e-9)
        for name, budget, run in runs:
            abs_e: dict[str, list] = {"inner": [], "first": [], "gt": []}
            sq_e: dict[str, list] = {"inner": [], "first": [], "gt": []}
            cov: dict[str, list] = {"inner": [], "first": [], "all": []}
            moe_med = []
            for rep in range(reps):
                rel = run(11000 + rep)
                assert table.check_additive(rel.values) and (rel.values >= 0).all()
                e = rel.values - truth
                for k in abs_e:
                    abs_e[k].append(np.abs(e[cls[k]]).mean())
                    sq_e[k].append((e[cls[k]].astype(float) ** 2).mean())
                ok = (rel.lower <= truth) & (truth <= rel.upper)
                for k in cov:
                    cov[k].append(ok[cls[k]].mean())
                moe_med.append(float(np.median(rel.moe[cls["inner"]])))
            print(f"| {eps:g} | {name} | {budget} | {np.mean(abs_e['inner']):.2f} | "
                  f"{math.sqrt(np.mean(sq_e['inner'])):.2f} | {np.mean(abs_e['first']):.1f} | "
                  f"{math.sqrt(np.mean(sq_e['first'])):.1f} | {np.mean(abs_e['gt']):.1f} | "
                  f"{math.sqrt(np.mean(sq_e['gt'])):.1f} | {np.mean(cov['inner']):.3f} | "
                  f"{np.mean(cov['first']):.3f} | {np.mean(cov['all']):.3f} | "
                  f"{np.mean(moe_med):.1f} |")


def big_table() -> CellTable:
    """1,000,000 inner cells: region (3-level hierarchy 10 > 50 > 200) x 50 x 20 x 5."""
    reg: dict[str, list[str]] = {"_T": [f"O{i}" for i in range(10)]}
    for i in range(10):
        reg[f"O{i}"] = [f"O{i}D{j}" for j in range(5)]
        for j in range(5):
            reg[f"O{i}D{j}"] = [f"O{i}D{j}L{k}" for k in range(4)]
    spec = spec_from_mapping({
        "id": "big", "title": {"en": "big"},
        "dimensions": [
            {"name": "region", "hierarchy": reg},
            {"name": "citizenship", "codes": [f"C{i:02d}" for i in range(50)]},
            {"name": "age", "codes": [f"A{i:02d}" for i in range(20)]},
            {"name": "reason", "codes": [f"P{i}" for i in range(5)]},
        ],
        "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}},
    })
    rng = np.random.default_rng(1)
    mu = rng.lognormal(0, 1.5, (200, 50, 20, 5)) * 2
    inner = rng.negative_binomial(0.6, 0.6 / (0.6 + mu))
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))


def speed() -> None:
    print("\n## Speed: 1,000,000 inner cells, 4 dimensions, 3-level region hierarchy "
          "(production path: OpenDP sampler)\n")
    t = time.perf_counter()
    table = big_table()
    build = time.perf_counter() - t
    t = time.perf_counter()
    pt = protect_noise(table)
    total = time.perf_counter() - t
    v = pt.published["obs_value"].to_numpy(dtype=np.int64)
    ok = table.check_additive(v) and bool((v >= 0).all())
    inner = int(table.inner_mask.sum())
    print("| inner cells | published cells | protect_noise s | additive & non-negative | "
          "epsilon certified |")
    print("|---:|---:|---:|:-:|---:|")
    print(f"| {inner:,} | {table.n_cells:,} | {total:.1f} | {'yes' if ok else 'NO'} | "
          f"{pt.report.privacy.epsilon_certified:.6f} |")
    print("\nbreakdown (s): " + ", ".join(f"{k} {v:.1f}" for k, v in pt.report.seconds.items()))
    print(f"\n(building the synthetic table: {build:.1f} s, not included; "
          f"inner MAE at eps 1: {np.abs(v - table.values)[table.inner_mask].mean():.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--eps", type=float, nargs="+", default=list(NOTE_EPS))
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--no-tradeoff", action="store_true")
    ap.add_argument("--gaussian-only", action="store_true",
                    help="only the zCDP section (Gaussian beside Laplace)")
    ap.add_argument("--no-gaussian", action="store_true")
    args = ap.parse_args()
    if args.gaussian_only:
        gaussian_vs_laplace(note_table(), args.eps, args.reps)
        return
    if not args.speed_only:
        table = note_table()
        inner = table.values[table.inner_mask]
        print("# DP release benchmark\n")
        print(f"table: {table.n_cells:,} published cells, {inner.size:,} inner; total "
              f"{inner.sum():,}; zeros {np.mean(inner == 0):.1%}; below 5 {np.mean(inner < 5):.1%}; "
              f"median {np.median(inner):g}; p99 {np.percentile(inner, 99):.0f}; max {inner.max()}")
        res = accuracy(table, args.eps, args.reps)
        targets(res)
        if not args.no_tradeoff:
            tradeoff(table, max(3, args.reps // 2))
        if not args.no_gaussian:
            gaussian_vs_laplace(table, args.eps, args.reps)
    if not args.no_speed:
        speed()


if __name__ == "__main__":
    main()
