"""Every ``torch.optim`` optimizer, registered under its lower-case class name.

``optim: {name: rmsprop, lr: 1e-3, alpha: 0.9}`` builds ``torch.optim.RMSprop(params, lr=1e-3,
alpha=0.9)``; the class signature is the ``optim`` section's schema, with the value constraints
below. ``ensemble_exact`` marks the optimizers whose step is element-wise per parameter and
linear in the learning rate, so that the vmapped seed ensemble (stacked members, one optimizer)
trains each member as its separate run would, with per-member learning rates applied by
rescaling the update (SGD, Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, Adadelta); the ensemble
refuses the others (L-BFGS's closure, Adagrad's rate decay, ASGD's averaging, Rprop's step
sizes, matrix optimizers such as Muon or M-FAC).
"""
from __future__ import annotations

import torch

from graphlab.registry import OPTIMIZERS
from graphlab.schema import Range

__all__ = ["ENSEMBLE_EXACT"]

ENSEMBLE_EXACT = ("sgd", "adam", "adamw", "adamax", "nadam", "radam", "rmsprop", "adadelta")

_CONSTRAINTS = {"lr": Range(ge=0), "weight_decay": Range(ge=0), "eps": Range(gt=0),
                "momentum": Range(ge=0), "dampening": Range(ge=0), "alpha": Range(ge=0),
                "rho": Range(ge=0, le=1), "lr_decay": Range(ge=0)}

for _cls in vars(torch.optim).values():
    if isinstance(_cls, type) and issubclass(_cls, torch.optim.Optimizer) and \
            _cls is not torch.optim.Optimizer:
        _name = _cls.__name__.lower()
        OPTIMIZERS.register(_name, _cls, ensemble_exact=_name in ENSEMBLE_EXACT,
                            constraints=_CONSTRAINTS)
