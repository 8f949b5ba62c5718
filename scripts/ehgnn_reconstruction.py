"""Bond-type reconstruction on ogbg-molhiv through a pooled bottleneck (EHGNN's graph
reconstruction experiment, Jo et al., NeurIPS 2021; the reference runs it on ZINC with
scripts/reconstruction_ZINC.sh, which the mirror does not hold).

An edge-level task the graphlab trainer does not have, so this script trains
:class:`graphlab.models.ehgnn.EdgeAutoencoder` itself, on graphlab's data loading
(``graphlab.data.load`` / ``get_split``: the official OGB scaffold split). Every model reads the
bond features (``bond`` encoder) and the graph, pools them into ``k`` cluster vectors per
molecule (``k = ceil(ratio * mean edges per training graph)``, the reference's rule, the same
``k`` for edges and nodes) and predicts every bond's type (column 0 of OGB's bond features,
5 classes) from what it pooled:

* ``--pool hypercluster``: HyperCluster over the edges of the dual hypergraph (the reference);
* ``--pool node_cluster``: a GMPool-style clustering of the nodes (the node-pooling baseline);
* ``--pool none``: no bottleneck (the upper bound).

Training follows the reference (Adam, lr 1e-3, cross-entropy per edge, cosine schedule after a
linear warm-up over the first 10% of the epochs, hidden 32, 2 convolutions each side, one
head, ratio 0.15); the epoch with the lowest validation loss is tested. Metrics: bond-type
accuracy over all test edges (both directions of a bond count) and the share of test molecules
whose every bond is right (exact match). Writes ``<out>/<experiment>/summary.json`` (mean and
unbiased std over seeds, graphlab's summary layout) and ``seed<k>.json`` with the history.

    python scripts/ehgnn_reconstruction.py --pool hypercluster --epochs 500 --seeds 3 \\
        --out scripts/results
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
os.environ.setdefault("OUTDATED_IGNORE", "1")


def evaluate(model, loader, device):
    """Mean loss per edge, bond-type accuracy, exact-match share of molecules."""
    model.eval()
    loss = correct = edges = exact = graphs = 0.0
    with torch.no_grad():
        for data in loader:
            data = data.to(device)
            out = model(data)
            y = data.edge_attr[:, 0].long()
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            right = out.argmax(-1) == y
            correct += float(right.sum())
            edges += y.numel()
            g = data.batch[data.edge_index[0]]
            wrong = torch.zeros(data.num_graphs, device=device).index_add_(
                0, g, (~right).float())
            exact += float((wrong == 0).sum())
            graphs += data.num_graphs
    return {"loss": loss / max(edges, 1), "accuracy": correct / max(edges, 1),
            "exact_match": exact / max(graphs, 1)}


def run_seed(args, seed: int, dataset, split, device) -> dict:
    from torch_geometric.loader import DataLoader

    from graphlab.models.ehgnn import EdgeAutoencoder
    from graphlab.train.run import count_parameters
    torch.manual_seed(seed)
    train = dataset[split["train"]]
    mean_edges = float(sum(int(d.num_edges) for d in train)) / len(train)
    k = math.ceil(args.ratio * mean_edges)
    gen = torch.Generator().manual_seed(seed)
    loaders = {"train": DataLoader(train, batch_size=args.batch_size, shuffle=True,
                                   generator=gen),
               "valid": DataLoader(dataset[split["valid"]], batch_size=args.eval_batch_size),
               "test": DataLoader(dataset[split["test"]], batch_size=args.eval_batch_size)}
    from ogb.utils.features import get_bond_feature_dims
    model = EdgeAutoencoder(get_bond_feature_dims()[0], edge_dim=3, edge_encoder="bond",
                            num_clusters=k, hidden_channels=args.hidden,
                            num_layers=args.layers, pool=args.pool).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    warm = max(1, args.epochs // 10)

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        return 0.5 * (1 + math.cos(math.pi * (epoch - warm) / max(1, args.epochs - warm)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    history, best, t0, train_time = [], None, time.perf_counter(), 0.0
    for epoch in range(args.epochs):
        model.train()
        t_ep = time.perf_counter()
        total = n = 0.0
        for data in loaders["train"]:
            data = data.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(data), data.edge_attr[:, 0].long())
            loss.backward()
            opt.step()
            total += float(loss) * data.num_edges
            n += data.num_edges
        sched.step()
        train_time += time.perf_counter() - t_ep
        row = {"epoch": epoch, "train_loss": total / max(n, 1),
               **{f"{s}_{k_}": v for s in ("valid", "test")
                  for k_, v in evaluate(model, loaders[s], device).items()}}
        history.append(row)
        if best is None or row["valid_loss"] < best["valid_loss"]:
            best = row
        print(f"[{args.pool} seed {seed}] epoch {epoch}: train loss {row['train_loss']:.4f} "
              f"valid loss {row['valid_loss']:.4f} acc {row['valid_accuracy']:.4f} test acc "
              f"{row['test_accuracy']:.4f} exact {row['test_exact_match']:.4f}", flush=True)
        if args.max_time and time.perf_counter() - t0 > args.max_time:
            break
    return {"seed": seed, "pool": args.pool, "num_clusters": k, "best": best,
            "epochs": len(history), "max_epochs": args.epochs,
            "complete": len(history) >= args.epochs, "history": history,
            "num_parameters": count_parameters(model), "wall_time_s": time.perf_counter() - t0,
            "train_time_per_epoch_s": train_time / max(len(history), 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", choices=["hypercluster", "node_cluster", "none"],
                    default="hypercluster")
    ap.add_argument("--epochs", type=int, default=500, help="reference: 500")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
    ap.add_argument("--hidden", type=int, default=32, help="reference: 32")
    ap.add_argument("--layers", type=int, default=2, help="reference: 2 convolutions per side")
    ap.add_argument("--ratio", type=float, default=0.15, help="reference: 0.15")
    ap.add_argument("--batch-size", type=int, default=128, help="reference: 128")
    ap.add_argument("--eval-batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3, help="reference: 0.001")
    ap.add_argument("--max-time", type=float, default=None,
                    help="seconds per seed; training stops after the epoch that passes it")
    ap.add_argument("--out", default="runs")
    ap.add_argument("--experiment", default=None,
                    help="default: ehgnn-recon-<pool>-ogbg-molhiv")
    args = ap.parse_args(argv)

    import graphlab.data as gd
    from graphlab.train import metrics as M
    from graphlab.train.run import atomic_write_json, git_sha, hardware
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dataset = gd.load("ogbg-molhiv")
    split = gd.get_split("ogbg-molhiv", dataset)
    name = args.experiment or f"ehgnn-recon-{args.pool.replace('_', '-')}-ogbg-molhiv"
    out_dir = osp.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    records = []
    for seed in range(args.seeds):
        rec = run_seed(args, seed, dataset, split, device)
        rec["config"] = vars(args)
        atomic_write_json(osp.join(out_dir, f"seed{seed}.json"), rec)
        records.append(rec)
    values = {f"{s}_{k}": [r["best"][f"{s}_{k}"] for r in records]
              for s in ("valid", "test") for k in ("accuracy", "exact_match", "loss")}
    summary = {"experiment": name, "seeds": list(range(args.seeds)),
               "num_parameters": records[0]["num_parameters"],
               "num_clusters": records[0]["num_clusters"], "metrics": M.summarize(values),
               "epochs": [r["epochs"] for r in records], "max_epochs": args.epochs,
               "complete": all(r["complete"] for r in records), "hardware": hardware(),
               "git_sha": git_sha(), "wall_time_s": sum(r["wall_time_s"] for r in records),
               "train_time_per_epoch_s": sum(r["train_time_per_epoch_s"] for r in records) /
               len(records)}
    atomic_write_json(osp.join(out_dir, "summary.json"), summary)
    print(json.dumps({k: summary[k] for k in ("experiment", "metrics", "epochs")}, indent=1))


if __name__ == "__main__":
    main()
