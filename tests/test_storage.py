"""The storage module: files round-trip byte for byte, keys cannot leave the folder,
a size limit stops the copy early, and nothing half-written is ever left behind."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from portal import storage
from portal.errors import ServiceError


@pytest.fixture
def root(tmp_path: Path, settings, ctx) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "not" / "yet" / "there"
    settings(STORAGE_DIR=str(folder))
    return folder


class CountingStream(io.BytesIO):
    """Records every read, to show the copy goes chunk by chunk and stops early."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(size)
        return super().read(size)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_round_trip_in_chunks(root: Path) -> None:
    data = os.urandom(3 * storage.CHUNK_SIZE + 123)
    stream = CountingStream(data)

    stored = storage.save(stream, prefix="attachments")

    assert stored.key.startswith("attachments/") and len(stored.key) == len("attachments/") + 32
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert all(size == storage.CHUNK_SIZE for size in stream.reads)
    assert storage.exists(stored.key) and storage.size(stored.key) == len(data)
    with storage.open(stored.key) as f:
        assert f.read() == data
    # The folder was made on demand and holds the file and nothing else (no temp file).
    assert _files(root) == [root / stored.key]


def test_every_save_gets_a_new_key(root: Path) -> None:
    keys = {storage.save(io.BytesIO(b"same"), prefix="exports").key for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    "key",
    [
        "../outside",
        "/etc/passwd",
        "attachments/../../etc/passwd",
        "attachments/" + "0" * 32 + "/..",
        "attachments\\..\\..\\boot.ini",
        "attachments/" + "0" * 31,
        "attachments/" + "g" * 32,
        "attachments/" + "0" * 32 + "\n",
        "Attachments/" + "0" * 32,
        "0" * 32,
        "",
        "a/b/" + "0" * 32,
    ],
)
def test_keys_it_could_not_have_generated_are_refused(root: Path, key: str) -> None:
    for operation in (storage.open, storage.delete, storage.exists, storage.size):
        with pytest.raises(storage.InvalidKey):
            operation(key)


@pytest.mark.parametrize("prefix", ["", "../up", "/abs", "a/b", "UPPER", "dot.ted"])
def test_prefixes_are_checked_too(root: Path, prefix: str) -> None:
    with pytest.raises(storage.InvalidKey):
        storage.save(io.BytesIO(b"x"), prefix=prefix)
    assert not root.exists() or _files(root) == []


def test_a_symlink_planted_in_the_folder_does_not_lead_out(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for download")
    key = "attachments/" + "a" * 32
    (root / "attachments").mkdir(parents=True)
    (root / key).symlink_to(secret)
    with pytest.raises(storage.InvalidKey):
        storage.open(key)


def test_max_bytes_stops_reading_and_keeps_nothing(root: Path) -> None:
    stream = CountingStream(b"x" * (10 * storage.CHUNK_SIZE))

    with pytest.raises(storage.FileTooLarge) as refused:
        storage.save(stream, prefix="attachments", max_bytes=storage.CHUNK_SIZE + 10)

    assert isinstance(refused.value, ServiceError) and refused.value.status == 413
    assert "larger than 64 KB" in refused.value.message
    assert len(stream.reads) == 2  # stopped at the chunk that went over, not at the end
    assert _files(root) == []


def test_max_bytes_is_inclusive(root: Path) -> None:
    stored = storage.save(io.BytesIO(b"y" * 1000), prefix="attachments", max_bytes=1000)
    assert stored.size == 1000 and storage.exists(stored.key)


def test_a_stream_that_fails_midway_leaves_nothing(root: Path) -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= storage.CHUNK_SIZE:
                raise OSError("connection reset")
            return super().read(size)

    with pytest.raises(OSError, match="connection reset"):
        storage.save(Broken(b"z" * (3 * storage.CHUNK_SIZE)), prefix="attachments")
    assert _files(root) == []


def test_delete_is_idempotent(root: Path) -> None:
    stored = storage.save(io.BytesIO(b"to be removed"), prefix="attachments")
    storage.delete(stored.key)
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    with pytest.raises(FileNotFoundError):
        storage.open(stored.key)
    assert _files(root) == []


def test_an_empty_stream_is_a_valid_empty_file(root: Path) -> None:
    stored = storage.save(io.BytesIO(b""), prefix="attachments")
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert storage.size(stored.key) == 0
