"""GraphTask's running training loss: summed without a host sync per step on CUDA, and a
non-finite loss still stops training with one clear line (at the step it appeared)."""
import math

import pytest
import torch

from graphlab.tasks import TASKS
from graphlab.train.task import GraphTask


def _task():
    return GraphTask(torch.nn.Identity(), TASKS.get("graph_classification")("accuracy"))


def test_running_loss_and_non_finite_loss_cpu():
    t = _task()
    t.on_train_epoch_start()
    t._accumulate_loss(torch.tensor(0.5), 4, 0)
    t._accumulate_loss(torch.tensor(1.5), 2, 1)
    t._epoch_loss[1] += 6
    t._flush_loss()
    assert t._epoch_loss == [0.5 * 4 + 1.5 * 2, 6]
    with pytest.raises(FloatingPointError, match="non-finite training loss nan at epoch 0, step 7"):
        t._accumulate_loss(torch.tensor(math.nan), 1, 7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_running_loss_and_non_finite_loss_cuda():
    t = _task()
    t.on_train_epoch_start()
    t._accumulate_loss(torch.tensor(0.5, device="cuda"), 4, 0)
    t._accumulate_loss(torch.tensor(1.5, device="cuda"), 2, 1)
    t._flush_loss()
    assert t._epoch_loss[0] == pytest.approx(5.0)
    t._accumulate_loss(torch.tensor(math.inf, device="cuda"), 1, 3)  # checked one step later
    with pytest.raises(FloatingPointError, match="at epoch 0, step 3"):
        t._accumulate_loss(torch.tensor(0.1, device="cuda"), 1, 4)
    t._accumulate_loss(torch.tensor(math.nan, device="cuda"), 1, 9)
    with pytest.raises(FloatingPointError, match="step 9"):  # or at the epoch's end
        t._flush_loss()
