"""Timings of the spectral positional encodings (configs/gin/README.md, "Positional encodings").

1. Eigensolvers on a connected ~2000-node sparse graph (random chords on a path, average
   degree ~6): whole-graph dense LAPACK vs graphlab's dense path vs its ARPACK path.
2. ``AddLaplacianEigen`` per graph, and SPE / SignNet / LapPE forward+backward per batch, on
   molhiv-sized random graphs (25 +- 6 nodes, ~2.2 edges per node, batch 32).

    python scripts/bench_pe.py [--n 2000] [--k 16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from graphlab.nn import LapPE, SignNet, SPE
from graphlab.transforms import AddLaplacianEigen
from graphlab.transforms.laplacian import laplacian_eigen, laplacian_matrix


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def chorded_path(n, avg_degree, rng):
    extra = rng.integers(0, n, size=(2, int(n * (avg_degree - 2) / 2)))
    ei = np.concatenate([np.stack([np.arange(n - 1), np.arange(1, n)]), extra], 1)
    return torch.from_numpy(ei)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    res = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "load_avg": os.getloadavg()}

    ei = chorded_path(args.n, 6, rng)
    L = laplacian_matrix(ei, args.n).toarray()
    res["whole_dense_eigh_s"] = best_of(lambda: np.linalg.eigh(L), args.repeats)
    res["graphlab_dense_s"] = best_of(
        lambda: laplacian_eigen(ei, args.n, args.k + 1, dense_max_nodes=10 ** 6), args.repeats)
    res["graphlab_sparse_s"] = best_of(
        lambda: laplacian_eigen(ei, args.n, args.k + 1, dense_max_nodes=100), args.repeats)

    graphs = []
    for _ in range(256):
        n = int(np.clip(rng.normal(25, 6), 2, 60))
        graphs.append(Data(edge_index=chorded_path(n, 2.2, rng), num_nodes=n))
    t = AddLaplacianEigen(args.k)
    start = time.perf_counter()
    graphs = [t(g) for g in graphs]
    res["transform_ms_per_graph"] = 1e3 * (time.perf_counter() - start) / len(graphs)
    batch = Batch.from_data_list(graphs[:32])
    torch.manual_seed(0)
    for name, model in [("spe", SPE(16)), ("signnet", SignNet(16, args.k)),
                        ("lap", LapPE(16, args.k))]:
        def step():
            model.zero_grad()
            model(batch).sum().backward()
        step()
        res[f"{name}_fwd_bwd_ms_per_batch32"] = 1e3 * best_of(step, args.repeats)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
