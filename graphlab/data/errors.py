"""The one exception the data layer raises for unusable data."""
from __future__ import annotations


class DataError(RuntimeError):
    """A dataset cannot be fetched, verified or processed.

    The message always names the file or directory at fault and what to do about it
    (re-copy from the mirror, delete a directory, set ``$GRAPHLAB_MIRROR``, install an extra).
    """
