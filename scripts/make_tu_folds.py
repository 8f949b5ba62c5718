"""Generate the committed TU cross-validation folds (run once; commit graphlab/data/folds/*.json).

Protocol of Errica et al., "A Fair Comparison of Graph Neural Networks for Graph
Classification" (ICLR 2020): 10 outer folds, stratified by class, shuffled; inside each outer
training part, a stratified holdout of 10% is the validation set used for model selection.
Folds depend only on the graph labels (``<NAME>_graph_labels.txt``) and ``--seed``.

    GRAPHLAB_MIRROR=../shared/data python scripts/make_tu_folds.py            # all TU sets
    python scripts/make_tu_folds.py MUTAG PROTEINS --seed 0

Requires scikit-learn (StratifiedKFold, train_test_split); only this script uses it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

N_FOLDS = 10
VALID_SHARE = 0.1


def make_folds(y: np.ndarray, seed: int) -> list:
    from sklearn.model_selection import StratifiedKFold, train_test_split
    outer = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    folds = []
    for train_idx, test_idx in outer.split(np.zeros(len(y)), y):
        _, valid_idx = train_test_split(train_idx, test_size=VALID_SHARE, stratify=y[train_idx],
                                        random_state=seed, shuffle=True)
        folds.append({"test": sorted(int(i) for i in test_idx),
                      "valid": sorted(int(i) for i in valid_idx)})
    return folds


def main(argv=None) -> None:
    import graphlab.data as gd
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="TU dataset names (default: every tu_cv dataset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=None, help="data root (default $GRAPHLAB_DATA)")
    args = ap.parse_args(argv)
    names = args.names or [r["name"] for r in gd.list_datasets() if r["protocol"] == "tu_cv"]
    for name in names:
        ds = gd.load(name, root=args.root)
        y = ds.y.numpy() if ds.y.dim() == 1 else ds.y.view(-1).numpy()
        out = {"dataset": gd.info(name).name, "num_graphs": len(ds), "n_folds": N_FOLDS,
               "valid_share": VALID_SHARE, "seed": args.seed,
               "protocol": "Errica et al. 2020: stratified 10-fold CV, stratified 10% inner "
                           "validation; sklearn StratifiedKFold(shuffle=True) + train_test_split",
               "labels_sha256": hashlib.sha256(np.ascontiguousarray(y, dtype=np.int64).tobytes())
               .hexdigest(),
               "folds": make_folds(y, args.seed)}
        path = osp.join(osp.dirname(gd.__file__), "folds", f"{out['dataset']}.json")
        with open(path, "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        print(f"{out['dataset']}: {len(ds)} graphs -> {path}")


if __name__ == "__main__":
    main()
