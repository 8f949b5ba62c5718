"""The exceptions graphlab raises for bad input, on the ground floor: any module may import
them, none of them imports anything of graphlab.

* :class:`ConfigError`: a config key is unknown, has the wrong type or an invalid value, or a
  required one is missing. The message is one line naming the key and the valid choices; the
  CLI turns it into exit code 2 without a traceback.
* :class:`DataError`: a dataset cannot be fetched, verified or processed. The message names the
  file or directory at fault and what to do about it (re-copy from the mirror, delete a
  directory, set ``$GRAPHLAB_MIRROR``, install an extra).
"""
from __future__ import annotations

__all__ = ["ConfigError", "DataError"]


class ConfigError(ValueError):
    """A config key is unknown, has the wrong type or value, or a required one is missing."""


class DataError(RuntimeError):
    """A dataset cannot be fetched, verified or processed."""
