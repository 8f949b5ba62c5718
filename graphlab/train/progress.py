"""What a person reads while seeds train: a line when a seed starts, one compact bar per
running seed (epoch, best validation metric so far, ETA; redrawn in place on a terminal, absent
in logs and pipes) and a line when it ends. ``--verbose`` keeps Lightning's own bars and
messages instead; ``--quiet`` prints only the final table."""
from __future__ import annotations

import sys
import time
from typing import Optional

from lightning.pytorch.callbacks import Callback

__all__ = ["SeedProgress", "format_seconds"]


def format_seconds(s: float) -> str:
    s = int(round(max(s, 0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SeedProgress(Callback):
    """Start line, in-place bar, end line for one seed (or fold) of a Lightning run.

    Args:
        label: how the run is named in the lines (``seed 0``, ``fold 3 seed 0``).
        stream: where to write (default: standard error, so results on standard output stay
            clean).
        width: characters of the bar.
    """

    def __init__(self, label: str, stream=None, width: int = 20):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def on_train_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()
        self._first = trainer.current_epoch
        print(f"[{self.label}] training epochs {trainer.current_epoch + 1}..{trainer.max_epochs}",
              file=self.stream, flush=True)

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not self.tty or pl_module.best is None:
            return
        done = trainer.current_epoch + 1
        total = max(trainer.max_epochs or done, done)
        ran = done - self._first
        eta = (time.perf_counter() - self._t0) / max(ran, 1) * (total - done)
        fill = int(self.width * done / total)
        m = pl_module.task.metric
        best = pl_module.best.get(f"valid_{m}")
        self.stream.write(f"\r[{self.label}] epoch {done}/{total} "
                          f"|{'#' * fill}{'.' * (self.width - fill)}| best valid {m} "
                          f"{best:.4f}  ETA {format_seconds(eta)} ")
        self.stream.flush()

    def on_fit_end(self, trainer, pl_module):
        if self.tty:
            self.stream.write("\n")
        best: Optional[dict] = pl_module.best
        if best is None:
            return
        m = pl_module.task.metric
        test = best.get(f"test_{m}")
        print(f"[{self.label}] done in {format_seconds(time.perf_counter() - self._t0)}: best "
              f"epoch {best['epoch']}, valid {m} {best[f'valid_{m}']:.4f}"
              + (f", test {m} {test:.4f}" if test is not None else ""),
              file=self.stream, flush=True)
