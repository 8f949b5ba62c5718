"""Convert the 10-fold split indices shipped with the EHGNN reference code (harryjo97/EHGNN,
``datasets/<NAME>/10fold_idx/{train,test}_idx-<f>.txt``, f = 1..10; the fold files of Xu et
al.'s GIN repository) into graphlab's fold format, ``graphlab/data/folds/<NAME>-ehgnn.json``
(run once; commit the JSON files).

The reference's rule is kept: fold ``f`` tests on ``test_idx-f`` and validates on the test part
of the previous fold (``test_idx-(f-1)``, fold 1 on fold 10); training is everything else.
The indices are positions in PyG's ``TUDataset`` order, where the reference applies them.
Their test parts hold 10 x floor(N / 10) graphs, so up to 9 graphs of a set are never tested.

    python scripts/import_ehgnn_folds.py /path/to/EHGNN-checkout MUTAG PROTEINS PTC_MR \
        IMDB-BINARY IMDB-MULTI
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


def read_folds(checkout: str, name: str) -> list:
    base = osp.join(checkout, "datasets", name, "10fold_idx")
    tests = [np.loadtxt(osp.join(base, f"test_idx-{f}.txt"), dtype=np.int64).reshape(-1)
             for f in range(1, N_FOLDS + 1)]
    trains = [np.loadtxt(osp.join(base, f"train_idx-{f}.txt"), dtype=np.int64).reshape(-1)
              for f in range(1, N_FOLDS + 1)]
    folds = []
    for f in range(N_FOLDS):
        test, valid = tests[f], tests[f - 1]
        if np.intersect1d(test, trains[f]).size:
            raise ValueError(f"{name} fold {f + 1}: train and test indices overlap")
        folds.append({"test": sorted(int(i) for i in test),
                      "valid": sorted(int(i) for i in valid)})
    return folds, int(max(max(t.max() for t in tests), max(t.max() for t in trains))) + 1


def main(argv=None) -> None:
    import graphlab.data as gd
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", help="a checkout of harryjo97/EHGNN")
    ap.add_argument("names", nargs="+", help="TU dataset names, e.g. MUTAG PROTEINS")
    ap.add_argument("--root", default=None, help="data root (default $GRAPHLAB_DATA)")
    args = ap.parse_args(argv)
    for name in args.names:
        ds = gd.load(name, root=args.root)
        folds, n_seen = read_folds(args.checkout, name)
        if n_seen != len(ds):
            raise ValueError(f"{name}: the fold files index {n_seen} graphs, the dataset has "
                             f"{len(ds)}")
        y = ds.y.numpy() if ds.y.dim() == 1 else ds.y.view(-1).numpy()
        out = {"dataset": f"{gd.info(name).name}-ehgnn", "num_graphs": len(ds),
               "n_folds": N_FOLDS,
               "protocol": "EHGNN reference folds (harryjo97/EHGNN datasets/<NAME>/10fold_idx, "
                           "commit 1983765): test = test_idx-f, valid = test_idx-(f-1), "
                           "train = the rest",
               "labels_sha256": hashlib.sha256(np.ascontiguousarray(y, dtype=np.int64).tobytes())
               .hexdigest(),
               "folds": folds}
        path = osp.join(osp.dirname(gd.__file__), "folds", f"{out['dataset']}.json")
        with open(path, "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        untested = len(ds) - len({i for fold in folds for i in fold["test"]})
        print(f"wrote {path} ({untested} graphs in no test fold)")


if __name__ == "__main__":
    main()
