"""Offline mirror: copy verified raw files from ``$GRAPHLAB_MIRROR`` into the data root.

A mirror is a directory laid out like ``shared/data`` (see its ``MANIFEST.md``): one folder per
loader in the layout that loader expects, and a ``SHA256SUMS`` file (``sha256sum`` format) that
lists every file. ``$GRAPHLAB_MIRROR`` may name several mirrors separated by ``os.pathsep``; the
first one that holds a dataset is used.

Files are only ever *read* from a mirror. Each file is checked against the mirror's
``SHA256SUMS`` (when it is listed there) before it is copied; a mismatch raises
:class:`~graphlab.errors.DataError` naming the file. Copies are written to a temporary
name and renamed, so concurrent loads never see half-copied files. Zip archives (HGB) are
unpacked into a temporary directory that is renamed into place.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import os.path as osp
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from graphlab.errors import DataError

SUMS_FILE = "SHA256SUMS"
_UNZIP_MARKER = ".graphlab-unzipped"


@dataclass(frozen=True)
class MirrorItem:
    """One piece of a dataset in a mirror.

    Args:
        src: path inside the mirror (a folder or a file, ``/``-separated).
        dst: path inside the data root where the loader expects it.
        unzip: ``src`` is a zip archive to unpack into ``dst``.
        gunzip: files ending in ``.gz`` are decompressed (``train.txt.gz`` -> ``train.txt``);
            used where the mirror stores a recompressed copy of a plain-text raw file.
    """

    src: str
    dst: str
    unzip: bool = False
    gunzip: bool = False


def mirror_dirs() -> List[str]:
    """Mirror directories from ``$GRAPHLAB_MIRROR`` (``os.pathsep``-separated), in order."""
    raw = os.environ.get("GRAPHLAB_MIRROR", "")
    return [osp.abspath(osp.expanduser(p)) for p in raw.split(os.pathsep) if p.strip()]


_SUMS_CACHE: Dict[Tuple[str, float], Dict[str, str]] = {}


def read_sums(mirror: str) -> Dict[str, str]:
    """``{relative path: sha256}`` from ``<mirror>/SHA256SUMS`` ({} when there is none)."""
    path = osp.join(mirror, SUMS_FILE)
    if not osp.isfile(path):
        return {}
    key = (path, os.stat(path).st_mtime)
    if key not in _SUMS_CACHE:
        sums = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                digest, _, name = line.partition(" ")
                name = name.lstrip(" *")
                if name.startswith("./"):
                    name = name[2:]
                sums[name] = digest.lower()
        _SUMS_CACHE[key] = sums
    return _SUMS_CACHE[key]


def sha256_file(path: str, gunzip: bool = False) -> str:
    h = hashlib.sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(mirror: str, src: str) -> Iterator[str]:
    """Relative (``/``-separated) paths of the files under ``src`` in ``mirror``."""
    top = osp.join(mirror, *src.split("/"))
    if osp.isfile(top):
        yield src
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for fn in sorted(filenames):
            rel = osp.relpath(osp.join(dirpath, fn), mirror)
            yield rel.replace(os.sep, "/")


def holds(mirror: str, items: List[MirrorItem]) -> bool:
    """Whether ``mirror`` holds every item (and every file its SHA256SUMS lists for it)."""
    sums = read_sums(mirror)
    for item in items:
        top = osp.join(mirror, *item.src.split("/"))
        if not (osp.isfile(top) or (osp.isdir(top) and any(True for _ in _files(mirror, item.src)))):
            return False
        prefix = item.src.rstrip("/") + "/"
        listed = [n for n in sums if n == item.src or n.startswith(prefix)]
        if any(not osp.isfile(osp.join(mirror, *n.split("/"))) for n in listed):
            return False
    return True


def find_mirror(items: List[MirrorItem]) -> Optional[str]:
    """The first configured mirror that holds all ``items``, or None."""
    if not items:
        return None
    for m in mirror_dirs():
        if osp.isdir(m) and holds(m, items):
            return m
    return None


def verify(mirror: str, rel: str) -> Optional[str]:
    """Check ``rel`` against the mirror's SHA256SUMS; returns its sha256 (None if unlisted)."""
    expected = read_sums(mirror).get(rel)
    if expected is None:
        return None
    path = osp.join(mirror, *rel.split("/"))
    got = sha256_file(path)
    if got != expected:
        raise DataError(
            f"mirror file {path} does not match {osp.join(mirror, SUMS_FILE)} "
            f"(sha256 {got}, expected {expected}): the mirror copy is corrupt. Restore it from the "
            f"source listed in {osp.join(mirror, 'MANIFEST.md')}, or unset GRAPHLAB_MIRROR to download.")
    return got


def _atomic_copy(src: str, dst: str, gunzip: bool) -> None:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    tmp = f"{dst}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        opener = gzip.open if gunzip else open
        with opener(src, "rb") as fi, open(tmp, "wb") as fo:
            shutil.copyfileobj(fi, fo, 1 << 20)
        os.replace(tmp, dst)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"could not copy mirror file {src} to {dst}: {e}") from e
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)


def fetch(mirror: str, items: List[MirrorItem], root: str) -> List[str]:
    """Copy (or unpack) ``items`` from ``mirror`` into ``root``; returns the paths written.

    Existing files in ``root`` are kept when they equal the mirror's copy and replaced when they
    differ (a damaged copy in the data root heals itself from the mirror).
    """
    written = []
    for item in items:
        if item.unzip:
            written += _fetch_zip(mirror, item, root)
            continue
        for rel in _files(mirror, item.src):
            src = osp.join(mirror, *rel.split("/"))
            sub = rel[len(item.src):].lstrip("/") if rel != item.src else osp.basename(rel)
            gz = item.gunzip and sub.endswith(".gz")
            dst = osp.join(root, *item.dst.split("/"), *(sub[:-3] if gz else sub).split("/"))
            expected = verify(mirror, rel)
            if osp.isfile(dst):
                want = sha256_file(src, gunzip=True) if gz else (expected or sha256_file(src))
                if sha256_file(dst) == want:
                    continue
            _atomic_copy(src, dst, gunzip=gz)
            written.append(dst)
    return written


def _fetch_zip(mirror: str, item: MirrorItem, root: str) -> List[str]:
    src = osp.join(mirror, *item.src.split("/"))
    digest = verify(mirror, item.src) or sha256_file(src)
    dst = osp.join(root, *item.dst.split("/"))
    marker = osp.join(dst, _UNZIP_MARKER)
    if osp.isfile(marker):
        with open(marker) as f:
            if f.read().strip() == digest:
                return []
    tmp = f"{dst}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with zipfile.ZipFile(src) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"mirror archive {src} is corrupt (member {bad} fails its CRC)")
            zf.extractall(tmp)
        with open(osp.join(tmp, _UNZIP_MARKER), "w") as f:
            f.write(digest + "\n")
        if osp.isdir(dst):
            shutil.rmtree(dst)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        try:
            os.rename(tmp, dst)
        except OSError:
            if not osp.isfile(marker):  # not a concurrent unpack of the same archive
                raise
    except zipfile.BadZipFile as e:
        raise DataError(f"mirror archive {src} is not a valid zip file ({e})") from e
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return [dst]
