"""Stored files: attachments, exports, PDFs, archives (DESIGN §5).

The one module that knows where stored files live. Callers hold only the key
that `save()` generated; nothing else builds a path to a stored file, so the
folder can move (or become an object store) behind these few functions.

Keys have one shape, `<prefix>/<32 hex digits>`, and every function checks a
key against it before touching the disk: a key forged in a URL or a row can
never name a path outside the storage folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from .errors import ServiceError

# Large enough to keep system calls few, small enough that an upload never sits in memory.
CHUNK_SIZE = 64 * 1024
_PREFIX = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_KEY = re.compile(r"(?P<prefix>[a-z][a-z0-9_-]{0,39})/[0-9a-f]{32}")


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class InvalidKey(ValueError):
    """A key `save()` could not have generated; never resolved to a path."""


class FileTooLarge(ServiceError):
    """The stream held more than the caller allowed (HTTP 413)."""

    status = 413

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"The file is larger than {human_size(max_bytes)}, the most allowed.")
        self.max_bytes = max_bytes


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.0f} MB"


def _root() -> Path:
    root = Path(current_app.config["SETTINGS"].STORAGE_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def _path(key: str) -> Path:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidKey(f"not a storage key: {key!r}")
    root = _root()
    path = (root / key).resolve()
    # The pattern already rules out "..", but a symlink planted in the folder would not be.
    if not path.is_relative_to(root):
        raise InvalidKey(f"storage key leaves the storage folder: {key!r}")
    return path


class NewFile:
    """A stored file being written: counts its bytes and hashes them on the way."""

    def __init__(self, out: BinaryIO, max_bytes: int | None) -> None:
        self._out = out
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self.size = 0
        self.stored: StoredFile | None = None  # set once the file is in place

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise FileTooLarge(self._max_bytes)
        self._digest.update(data)
        return self._out.write(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@contextmanager
def create(prefix: str, max_bytes: int | None = None) -> Iterator[NewFile]:
    """Write a new stored file inside the block; its key, size and SHA-256 are on
    `.stored` once the block ends.

    The bytes go to a temporary file next to their final place, renamed only when the
    block ends without an error, so a reader never sees half a file and a failed,
    refused or cancelled write leaves nothing behind. With `max_bytes`, writing more
    raises FileTooLarge.
    """
    if not _PREFIX.fullmatch(prefix):
        raise InvalidKey(f"not a storage prefix: {prefix!r}")
    key = f"{prefix}/{uuid.uuid4().hex}"
    target = _path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name never matches the key pattern, so no key can reach a partial file.
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-", suffix=".part")
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK_SIZE) as out:
            new_file = NewFile(out, max_bytes)
            yield new_file
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    new_file.stored = StoredFile(key=key, size=new_file.size, sha256=new_file.sha256)


def save(stream: BinaryIO, *, prefix: str, max_bytes: int | None = None) -> StoredFile:
    """Copy `stream` into a new stored file and return its key, size and SHA-256 (see
    `create`); reading stops as soon as the stream holds more than `max_bytes`."""
    with create(prefix, max_bytes) as new_file:
        while chunk := stream.read(CHUNK_SIZE):
            new_file.write(chunk)
    assert new_file.stored is not None
    return new_file.stored


def open(key: str) -> BinaryIO:  # noqa: A001 - the module is used as `storage.open(key)`
    """The stored file for reading (binary); FileNotFoundError if it is gone."""
    return _path(key).open("rb")


def delete(key: str) -> None:
    """Remove a stored file; removing one that is already gone is not an error."""
    _path(key).unlink(missing_ok=True)


def exists(key: str) -> bool:
    return _path(key).is_file()


def size(key: str) -> int:
    return _path(key).stat().st_size


def purge_partial(prefix: str, older_than: timedelta) -> int:
    """Remove temporary files under `prefix` left by writers that died mid-way (a killed
    worker never reaches `create`'s cleanup); the number removed."""
    if not _PREFIX.fullmatch(prefix):
        raise InvalidKey(f"not a storage prefix: {prefix!r}")
    folder = _root() / prefix
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for partial in folder.glob(".incoming-*.part"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
