"""Every sampler side by side on one graph: the table of ``graphlab sample --compare`` and of
``scripts/bench_sampling.py``.

Per method and seed: KS distance of the sample's out- and in-degree distributions to the
original's, JDM and DCM deviation (:func:`~graphlab.sampling.metrics.matrix_deviation`, total
variation between normalised matrices: against the rescaled target it equals that against the
original), average clustering and reciprocity, and seconds per sample.

Timing: the constructed methods (``'jdm'``, ``'nx2k'``) share one rescaled target per graph and
ratio (it does not depend on the seed), so it is computed once, timed once, and its time is
added to every sample's construction time; ``build_s`` is the construction alone. Subgraph
samplers are timed per call.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from graphlab.sampling import metrics as mt
from graphlab.sampling.baselines import SAMPLERS
from graphlab.sampling.construct import construct, construct_networkx, target_nodes
from graphlab.sampling.degree_matrices import DegreeMatrices, degree_matrices, simple_directed
from graphlab.sampling.rescale import rescale
from graphlab.sampling.sample import METHODS

COLUMNS = ("ks_out", "ks_in", "jdm_dev", "dcm_dev", "clustering", "reciprocity", "time_s",
           "build_s")


def evaluate(edge_index: np.ndarray, num_nodes: int, original: DegreeMatrices) -> Dict:
    """The comparison metrics of one sample against the original's degree matrices."""
    S = degree_matrices(edge_index, num_nodes)
    return {"ks_out": mt.degree_ks(S.out_degree, original.out_degree),
            "ks_in": mt.degree_ks(S.in_degree, original.in_degree),
            "jdm_dev": mt.matrix_deviation(S.jdm, original.jdm),
            "dcm_dev": mt.matrix_deviation(S.dcm, original.dcm),
            "clustering": mt.average_clustering(edge_index, num_nodes),
            "reciprocity": mt.reciprocity(edge_index, num_nodes),
            "nodes": num_nodes, "edges": int(S.num_edges)}


def compare(edge_index, num_nodes: int, ratio: float, seeds: Sequence[int],
            methods: Sequence[str] = METHODS, samples: Optional[dict] = None,
            info: Optional[dict] = None) -> List[Dict]:
    """One row per (method, seed) with :data:`COLUMNS` and the sample's size.

    ``samples``, if given, receives ``{method: (edge_index, num_nodes)}`` of each method's
    first seed (for plots); ``info`` receives ``target`` (the
    :class:`~graphlab.sampling.rescale.RescaledTarget`) and ``target_s``.
    """
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown sampling method {m!r}; expected one of {list(METHODS)}")
    ei = simple_directed(edge_index, num_nodes)
    original = degree_matrices(ei, num_nodes)
    n_new = int(round(ratio * num_nodes))
    target, target_s = None, 0.0
    if any(m in ("jdm", "nx2k") for m in methods):
        t0 = time.perf_counter()
        target = rescale(original, ratio)
        target_s = time.perf_counter() - t0
    if info is not None:
        info.update(target=target, target_s=target_s)
    rows = []
    for m in methods:
        for seed in seeds:
            t0 = time.perf_counter()
            extra = {}
            if m == "jdm":
                c = construct(target, seed=seed)
                edges, n_s = c.edge_index, target.num_nodes
                extra = {"fallback": c.fallback, "defects": c.defects}
            elif m == "nx2k":
                out_deg, in_deg = target_nodes(target, np.random.default_rng(seed))
                edges, n_s = construct_networkx(target, out_deg, in_deg, seed=seed), \
                    target.num_nodes
            else:
                edges, _ = SAMPLERS[m](ei, num_nodes, n_new, np.random.default_rng(seed))
                n_s = n_new
            build = time.perf_counter() - t0
            row = {"method": m, "seed": seed, "ratio": ratio, **evaluate(edges, n_s, original),
                   "build_s": build,
                   "time_s": build + (target_s if m in ("jdm", "nx2k") else 0.0), **extra}
            rows.append(row)
            if samples is not None and m not in samples:
                samples[m] = (edges, n_s)
    return rows


def summarise(rows: List[Dict]) -> List[Dict]:
    """Mean and std over seeds per (method, ratio)."""
    out = []
    keys = sorted({(r["ratio"], r["method"]) for r in rows},
                  key=lambda k: (k[0], METHODS.index(k[1])))
    for ratio, m in keys:
        sel = [r for r in rows if r["method"] == m and r["ratio"] == ratio]
        s = {"method": m, "ratio": ratio, "seeds": len(sel)}
        for c in COLUMNS + ("nodes", "edges"):
            v = np.array([r[c] for r in sel], dtype=np.float64)
            s[c] = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            s[c + "_std"] = float(np.nanstd(v)) if np.isfinite(v).any() else float("nan")
        if m == "jdm":
            s["fallbacks"] = int(sum(r.get("fallback", False) for r in sel))
        out.append(s)
    return out


def format_table(summary: List[Dict], original: Optional[Dict] = None) -> str:
    """Markdown table of :func:`summarise`'s rows (mean ± std over seeds)."""
    head = ("| ratio | method | seeds | nodes | edges | KS out | KS in | JDM dev | DCM dev | "
            "clustering | reciprocity | s / sample | build s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    if original is not None:
        lines.append(f"| – | original | – | {original['nodes']} | {original['edges']} | – | – | "
                     f"– | – | {original['clustering']:.4f} | {original['reciprocity']:.4f} | "
                     f"– | – |")
    for s in summary:
        def pm(c, f="{:.4f}"):
            return f"{f.format(s[c])} ± {f.format(s[c + '_std'])}"
        lines.append(f"| {s['ratio']} | {s['method']} | {s['seeds']} | {s['nodes']:.0f} | "
                     f"{s['edges']:.0f} | {pm('ks_out')} | {pm('ks_in')} | {pm('jdm_dev')} | "
                     f"{pm('dcm_dev')} | {pm('clustering')} | {pm('reciprocity')} | "
                     f"{pm('time_s', '{:.3f}')} | {pm('build_s', '{:.3f}')} |")
    return "\n".join(lines)


def original_stats(edge_index, num_nodes: int) -> Dict:
    ei = simple_directed(edge_index, num_nodes)
    return {"nodes": num_nodes, "edges": int(ei.shape[1]),
            "clustering": mt.average_clustering(ei, num_nodes),
            "reciprocity": mt.reciprocity(ei, num_nodes)}


def plot_degrees(path: str, edge_index, num_nodes: int, samples: dict, title: str) -> None:
    """Complementary CDFs of out- and in-degree: the original and one sample per method."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    graphs = {"original": (simple_directed(edge_index, num_nodes), num_nodes), **samples}
    for name, (ei, n) in graphs.items():
        M = degree_matrices(ei, n)
        for ax, deg in zip(axes, (M.out_degree, M.in_degree)):
            d = np.sort(deg)
            ccdf = 1.0 - np.arange(d.size) / d.size
            keep = d > 0
            ax.step(d[keep], ccdf[keep], where="post", label=name, ls="--" if name == "nx2k" else "-",
                    lw=2.2 if name == "original" else 1.2,
                    color="black" if name == "original" else None)
    for ax, what in zip(axes, ("out-degree", "in-degree")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(what)
        ax.set_ylabel(f"P({what} >= d)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
