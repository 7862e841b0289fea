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
import uuid
from dataclasses import dataclass
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


def save(stream: BinaryIO, *, prefix: str, max_bytes: int | None = None) -> StoredFile:
    """Copy `stream` into a new stored file and return its key, size and SHA-256.

    The copy goes to a temporary file next to its final place and is renamed
    only when complete, so a reader never sees half a file and a failed or
    refused upload leaves nothing behind. With `max_bytes`, reading stops as
    soon as the stream holds more, and FileTooLarge is raised.
    """
    if not _PREFIX.fullmatch(prefix):
        raise InvalidKey(f"not a storage prefix: {prefix!r}")
    key = f"{prefix}/{uuid.uuid4().hex}"
    target = _path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name never matches the key pattern, so no key can reach a partial file.
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-", suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(max_bytes)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return StoredFile(key=key, size=size, sha256=digest.hexdigest())


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
