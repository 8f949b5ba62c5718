"""LightGCN on Gowalla: graphlab's recommendation path against a plain PyG training loop, side
by side in one process, on the same split (the release's train file; test for Recall@20).

The plain loop is what a PyG user writes: ``torch_geometric.nn.LightGCN``, its BPR
``recommendation_loss`` with ``lambda_reg`` 1e-4, batch 2048, uniform negatives drawn on the GPU,
CUDA-synchronised epoch timing. graphlab runs ``configs/lightgcn/gowalla.yaml`` (negatives
outside the user's items, L2 1e-4, the test set ranked after every epoch) through ``run_seed``;
its training time per epoch is the trainer's own (``throughput``), the rest of its wall time is
start-up and the per-epoch ranking.

    python scripts/bench_recommendation.py --epochs 3 --out bench.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch_geometric.nn import LightGCN

from graphlab.data.pipeline import build_data
from graphlab.tasks.ranking import bipartite_graph, rank_metrics
from graphlab.train.config import load_config, merge, parse_overrides
from graphlab.train.run import run_seed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_loop(dataset: str, epochs: int, device: torch.device) -> dict:
    t_start = time.perf_counter()
    _, _, split = build_data({"name": dataset}, 0)
    nu, ni = split["num_users"], split["num_items"]
    train = torch.cat([split["train"], split["valid"]], 1).to(device)
    edge_index = bipartite_graph(train, nu, ni).edge_index.to(device)
    torch.manual_seed(0)
    model = LightGCN(nu + ni, 64, 3).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        for idx in torch.randperm(train.size(1), device=device).split(2048):
            u, i = train[0, idx], train[1, idx] + nu
            j = torch.randint(0, ni, (idx.numel(),), device=device) + nu
            emb = model.get_embedding(edge_index)
            pos = (emb[u] * emb[i]).sum(-1)
            neg = (emb[u] * emb[j]).sum(-1)
            loss = model.recommendation_loss(pos, neg, node_id=torch.cat([u, i, j]).unique(),
                                             lambda_reg=1e-4)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        scores = rank_metrics(model.get_embedding(edge_index), nu, ni, split["test"].to(device),
                              train, k=20)
    return {"epoch_s": times, "test": scores, "wall_s": time.perf_counter() - t_start,
            "num_train": train.size(1)}


def graphlab_run(dataset: str, epochs: int, config: str, num_train: int) -> dict:
    cfg = merge(load_config(config), parse_overrides([f"trainer.max_epochs={epochs}",
                                                      f"data.name={dataset}"]))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        rec = run_seed(cfg, 0, out, quiet=True)
    wall = time.perf_counter() - t0
    train_s = num_train * epochs / rec["throughput"]["train_samples_per_s"]
    return {"epoch_s": train_s / epochs, "wall_s": wall, "trainer_wall_s": rec["wall_time_s"],
            "history": rec["history"], "test": rec["test"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dataset", default="gowalla")
    p.add_argument("--config", default="configs/lightgcn/gowalla.yaml")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    plain = plain_loop(a.dataset, a.epochs, dev)
    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dataset": a.dataset, "epochs": a.epochs, "plain_pyg": plain,
           "graphlab": graphlab_run(a.dataset, a.epochs, a.config, plain["num_train"])}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: (v if not isinstance(v, dict) else
                          {kk: vv for kk, vv in v.items() if kk != "history"})
                      for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
