"""graphlab.train.checkpoint_writer: background checkpoint writes from a point-in-time host copy."""
from __future__ import annotations

import threading
from collections import OrderedDict

import pytest
import torch

from graphlab.train.checkpoint_writer import BackgroundCheckpointWriter
from graphlab.train.records import atomic_torch_save


def _ckpt(w):
    return {"epoch": 3, "state": OrderedDict(w=w, b=torch.arange(4)),
            "members": [{"opt": {"step": torch.tensor(7.0)}}, None], "pair": (w * 2, "x")}


def test_writes_what_was_passed_and_keeps_types(tmp_path):
    w = torch.randn(3, 5, dtype=torch.float64)
    path = tmp_path / "last.ckpt"
    with BackgroundCheckpointWriter(atomic_torch_save) as io:
        io.save(_ckpt(w), str(path))
    got = torch.load(path, weights_only=False)
    assert got["epoch"] == 3 and isinstance(got["state"], OrderedDict)
    assert torch.equal(got["state"]["w"], w) and got["state"]["w"].dtype == torch.float64
    assert torch.equal(got["state"]["b"], torch.arange(4))
    assert got["members"][0]["opt"]["step"] == 7.0 and got["members"][1] is None
    assert isinstance(got["pair"], tuple) and torch.equal(got["pair"][0], w * 2)


def test_copy_is_taken_at_save_time(tmp_path):
    """Training changes the weights right after save(): the file holds the values at save()."""
    gate = threading.Event()

    def slow_write(obj, path):
        gate.wait(5)
        atomic_torch_save(obj, path)
    w = torch.zeros(4)
    io = BackgroundCheckpointWriter(slow_write)
    io.save({"w": w}, str(tmp_path / "a.ckpt"))
    w += 1  # in place, as an optimiser step does
    gate.set()
    io.close()
    assert torch.equal(torch.load(tmp_path / "a.ckpt")["w"], torch.zeros(4))


def test_one_write_at_a_time_in_order(tmp_path):
    order = []

    def write(obj, path):
        order.append(int(obj["epoch"]))
        atomic_torch_save(obj, path)
    with BackgroundCheckpointWriter(write) as io:
        for e in range(5):
            io.save({"epoch": e, "w": torch.full((2,), float(e))}, str(tmp_path / "last.ckpt"))
    assert order == list(range(5))
    assert torch.equal(torch.load(tmp_path / "last.ckpt")["w"], torch.full((2,), 4.0))


def test_write_error_surfaces_at_next_save_and_close(tmp_path):
    def broken(obj, path):
        raise OSError("disk full")
    io = BackgroundCheckpointWriter(broken)
    io.save({"w": torch.ones(1)}, str(tmp_path / "a.ckpt"))
    with pytest.raises(OSError, match="disk full"):
        io.save({"w": torch.ones(1)}, str(tmp_path / "a.ckpt"))
    io.save({"w": torch.ones(1)}, str(tmp_path / "a.ckpt"))
    with pytest.raises(OSError, match="disk full"):
        io.close()


def test_exception_in_block_is_not_masked_by_a_write_error(tmp_path):
    def broken(obj, path):
        raise OSError("disk full")
    with pytest.raises(KeyError):
        with BackgroundCheckpointWriter(broken) as io:
            io.save({"w": torch.ones(1)}, str(tmp_path / "a.ckpt"))
            raise KeyError("training failed")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_go_to_reused_pinned_buffers(tmp_path):
    seen = []

    def write(obj, path):
        seen.append((obj["w"].device.type, obj["w"].is_pinned(), obj["w"].data_ptr()))
        atomic_torch_save(obj, path)
    w = torch.randn(1000, device="cuda")
    with BackgroundCheckpointWriter(write) as io:
        io.save({"w": w}, str(tmp_path / "a.ckpt"))
        w.mul_(2)
        io.save({"w": w}, str(tmp_path / "a.ckpt"))
    assert [s[:2] for s in seen] == [("cpu", True)] * 2 and seen[0][2] == seen[1][2]
    assert torch.equal(torch.load(tmp_path / "a.ckpt")["w"], w.cpu())
