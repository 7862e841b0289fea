"""Retention archives: one folder per run, a gzip JSON Lines file per table and a
manifest.json with each file's row count and SHA-256; read back and proved before any
row is deleted.

Rows are written as the table stores them (every column, by name), times as UTC ISO
text, so an archive can be read without the portal. gzip's header carries no time
(mtime 0), so the same rows always give the same bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..timeutil import iso_utc

MANIFEST = "manifest.json"
FORMAT = 1


class ArchiveError(Exception):
    """The archive does not hold what its manifest says: nothing may be deleted."""


def plain_value(value: Any) -> Any:
    """A stored value as JSON holds it."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def jsonl_line(row: dict[str, Any]) -> bytes:
    text = json.dumps(
        {k: plain_value(v) for k, v in row.items()},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return text.encode()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Open:
    table: str
    kind: str
    stream: Any
    rows: int = 0


@dataclass
class ArchiveWriter:
    """Rows appended table by table; `close()` writes the manifest and returns it."""

    folder: Path
    meta: dict[str, Any] = field(default_factory=dict)
    _files: dict[str, _Open] = field(default_factory=dict)
    _stored: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=False)

    def file_name(self, table: str) -> str:
        return f"{table}.jsonl.gz"

    def write(self, kind: str, table: str, rows: list[dict[str, Any]]) -> None:
        self.write_lines(kind, table, [jsonl_line(row) for row in rows])

    def write_lines(self, kind: str, table: str, lines: list[bytes]) -> None:
        """Rows already serialised, one JSON object each (without its newline)."""
        opened = self._files.get(table)
        if opened is None:
            raw = (self.folder / self.file_name(table)).open("wb")
            stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            opened = self._files[table] = _Open(table, kind, (stream, raw))
        gz = opened.stream[0]
        for line in lines:
            gz.write(line + b"\n")
        opened.rows += len(lines)

    def copy_file(self, source: Path, name: str) -> None:
        """A stored file (an attachment) kept beside the rows, under files/."""
        target = self.folder / "files" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        self._stored.append(
            {"name": f"files/{name}", "bytes": target.stat().st_size, "sha256": sha256_of(target)}
        )

    def close(self) -> dict[str, Any]:
        files = []
        for opened in self._files.values():
            gz, raw = opened.stream
            gz.close()
            raw.close()
            path = self.folder / self.file_name(opened.table)
            files.append(
                {
                    "name": path.name,
                    "table": opened.table,
                    "kind": opened.kind,
                    "rows": opened.rows,
                    "sha256": sha256_of(path),
                }
            )
        manifest = {"format": FORMAT, **self.meta, "files": files, "stored_files": self._stored}
        (self.folder / MANIFEST).write_bytes(manifest_bytes(manifest))
        return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{folder / MANIFEST}: cannot be read ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{folder / MANIFEST}: not a retention manifest")
    return manifest


def read_lines(folder: Path, entry: dict[str, Any]) -> list[bytes]:
    """One file's lines, after its SHA-256 is checked against the manifest's."""
    path = folder / entry["name"]
    if not path.is_file():
        raise ArchiveError(f"{entry['name']}: missing")
    if sha256_of(path) != entry["sha256"]:
        raise ArchiveError(f"{entry['name']}: its SHA-256 is not the manifest's")
    try:
        with gzip.open(path, "rb") as stream:
            lines = stream.read().splitlines()
    except (OSError, EOFError) as exc:
        raise ArchiveError(f"{entry['name']}: not a whole gzip file ({exc})") from exc
    if len(lines) != entry["rows"]:
        raise ArchiveError(f"{entry['name']}: {len(lines)} rows, the manifest says {entry['rows']}")
    return lines


def read_back(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows as archived, once every file is proved against the manifest
    (count, SHA-256, each line a JSON object) and every stored file against its hash."""
    manifest = read_manifest(folder)
    tables: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["files"]:
        rows = []
        for number, line in enumerate(read_lines(folder, entry), start=1):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ArchiveError(f"{entry['name']} line {number}: not JSON") from exc
            if not isinstance(row, dict):
                raise ArchiveError(f"{entry['name']} line {number}: not a row")
            rows.append(row)
        tables[entry["table"]] = rows
    for stored in manifest.get("stored_files", []):
        path = folder / stored["name"]
        if not path.is_file() or sha256_of(path) != stored["sha256"]:
            raise ArchiveError(f"{stored['name']}: missing or not the file archived")
    return tables
