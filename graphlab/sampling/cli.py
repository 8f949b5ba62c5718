"""``graphlab sample``: a degree-preserving directed sample of a registered dataset.

    graphlab sample DATASET --ratio 0.2 [--method jdm] [--seed 0] --out FILE
    graphlab sample DATASET --ratio 0.2 --compare [--seeds 10] [--plot FILE]

DATASET is a registered dataset (``graphlab data list``; directed SNAP graphs such as
``email-Eu-core``, ``wiki-Vote``, ``p2p-Gnutella08``) or a SNAP-style edge-list file. ``--out``
writes the sample: ``.pt`` as a PyG ``Data`` (``torch.save``), anything else as a text edge
list. ``--compare`` prints every method side by side (``graphlab.sampling.compare``) and
plots the degree distributions.
"""
from __future__ import annotations

import argparse
import os
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sample`` on the ``graphlab`` command's subparsers."""
    s = subparsers.add_parser("sample", help="degree-preserving directed graph sample (JDM/DCM)")
    s.add_argument("dataset", help="registered dataset name, or a SNAP edge-list file")
    s.add_argument("--ratio", type=float, default=0.2,
                   help="sample size as a fraction of the nodes (default: 0.2)")
    s.add_argument("--method", default="jdm",
                   help="jdm (default), nx2k, random_node, random_edge, random_walk, forest_fire")
    s.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    s.add_argument("--out", help="write the sample: FILE.pt (PyG Data) or a text edge list")
    s.add_argument("--compare", action="store_true",
                   help="print all methods side by side and plot the degree distributions")
    s.add_argument("--seeds", type=int, default=10, help="with --compare: seeds 0..N-1")
    s.add_argument("--plot", help="with --compare: the plot's path "
                                  "(default: sample-compare-DATASET-RATIO.png)")
    return s


def _load(name: str):
    from graphlab.data.snap import read_edge_list
    if os.path.isfile(name):
        import torch
        from torch_geometric.data import Data
        ei = read_edge_list(name)
        _, ei = torch.unique(ei.flatten(), return_inverse=True)
        ei = ei.view(2, -1)
        return Data(edge_index=ei, num_nodes=int(ei.max()) + 1 if ei.numel() else 0)
    import graphlab.data as gd
    return gd.load(name)[0]


def _write(path: str, data) -> None:
    import numpy as np
    import torch
    if path.endswith(".pt"):
        torch.save(data, path)
        return
    ei = data.edge_index.numpy()
    with open(path, "w") as f:
        f.write(f"# graphlab sample: nodes {data.num_nodes} edges {ei.shape[1]}\n"
                "# FromNodeId\tToNodeId\n")
        np.savetxt(f, ei.T, fmt="%d", delimiter="\t")


def main(args) -> int:
    """Run ``graphlab sample``; returns the exit code (2 for bad arguments)."""
    from graphlab.sampling.sample import METHODS
    if args.method not in METHODS:
        print(f"graphlab sample: unknown --method {args.method!r}; choose from "
              f"{', '.join(METHODS)}", file=sys.stderr)
        return 2
    if not args.compare and not args.out:
        print("graphlab sample: give --out FILE (or --compare)", file=sys.stderr)
        return 2
    data = _load(args.dataset)
    ei, n = data.edge_index.numpy(), int(data.num_nodes)
    try:
        if args.compare:
            return _compare(args, ei, n)
        return _sample(args, data, ei, n)
    except ValueError as e:
        print(f"graphlab sample: {e}", file=sys.stderr)
        return 2


def _sample(args, data, ei, n) -> int:
    from graphlab.sampling.compare import evaluate
    from graphlab.sampling.degree_matrices import degree_matrices
    from graphlab.sampling.rescale import rescale
    from graphlab.sampling.sample import sample_directed
    s = sample_directed(data, args.ratio, args.method, args.seed)
    original = degree_matrices(ei, n)
    if args.method in ("jdm", "nx2k"):
        print(f"target: {rescale(original, args.ratio).report}")
    m = evaluate(s.edge_index.numpy(), s.num_nodes, original)
    print(f"{args.method} sample of {args.dataset} at ratio {args.ratio} (seed {args.seed}): "
          f"{m['nodes']} nodes, {m['edges']} edges; KS out {m['ks_out']:.4f}, "
          f"KS in {m['ks_in']:.4f}, JDM dev {m['jdm_dev']:.4f}, DCM dev {m['dcm_dev']:.4f}")
    _write(args.out, s)
    print(f"wrote {args.out}")
    return 0


def _compare(args, ei, n) -> int:
    from graphlab.sampling.compare import (compare, format_table, original_stats,
                                           plot_degrees, summarise)
    samples = {}
    rows = compare(ei, n, args.ratio, range(args.seeds), samples=samples)
    print(f"{args.dataset}, ratio {args.ratio}, seeds 0..{args.seeds - 1} "
          f"(mean ± std over seeds)")
    print(format_table(summarise(rows), original_stats(ei, n)))
    plot = args.plot or f"sample-compare-{args.dataset}-{args.ratio}.png"
    plot_degrees(plot, ei, n, samples, f"{args.dataset}: degree distributions, ratio "
                                       f"{args.ratio}, seed 0")
    print(f"wrote {plot}")
    return 0
