"""The audit trail's part in retention: its oldest events go in one whole chain segment,
from the first remaining row up to the last one past the policy, and a seal anchors what
remains.

In the archive each event is one line, `{"hash":"<its hash>","row":<its canonical
text>}`: the row is the exact bytes its hash covers, so the archive alone proves it.
Before any row goes, an `audit.sealed` event is appended to the chain with the segment's
first and last id, count and last hash and the SHA-256 of the archive's manifest; the
first remaining row's prev_hash must be that last hash, and verification starts there
(verification.py). The seal's own line is written to seal.json once it has committed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from ..audits.chain import (
    GENESIS_HASH,
    canonical,
    canonical_stored,
    event_values,
    read_batch,
    stored_data,
)
from ..audits.models import AuditEvent
from ..audits.services import allow_retention_in_this_transaction, record
from ..audits.verification import SEAL_ACTION, chain_start
from ..extensions import db
from ..timeutil import iso_utc
from .archive import MANIFEST, ArchiveError, ArchiveWriter, read_lines, read_manifest, sha256_of

TABLE = "audit_events"
SEAL_FILE = "seal.json"
PENDING_SEAL = "seal.json.pending"
READ_BATCH = 10_000
DELETE_BATCH = 10_000
_HEAD = b'{"hash":"'
_MIDDLE = b'","row":'


def line(stored_hash: str, row_bytes: bytes) -> bytes:
    return _HEAD + stored_hash.encode() + _MIDDLE + row_bytes + b"}"


def split_line(raw: bytes) -> tuple[str, bytes]:
    """(hash, the row's canonical bytes) of one archived line."""
    start = len(_HEAD) + 64
    if not (raw.startswith(_HEAD) and raw[start : start + len(_MIDDLE)] == _MIDDLE):
        raise ValueError("not an archived audit event")
    if not raw.endswith(b"}"):
        raise ValueError("not an archived audit event")
    return raw[len(_HEAD) : start].decode(), raw[start + len(_MIDDLE) : -1]


def bounds(cutoff: datetime) -> tuple[int, int] | None:
    """(first remaining id, last id recorded before `cutoff`): the segment that goes."""
    # Ids rise with time (record() stamps both under the chain lock), so the last id
    # before the cutoff is the newest event by time: read from the time index, not by
    # walking the primary key back over every newer event.
    last_before = (
        select(AuditEvent.id)
        .where(AuditEvent.created_at < cutoff)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    first, last = db.session.execute(
        select(select(func.min(AuditEvent.id)).scalar_subquery(), last_before)
    ).one()
    if first is None or last is None or last < first:
        return None
    return first, last


def archive(writer: ArchiveWriter, first_id: int, last_id: int) -> dict[str, Any]:
    """Write ids first_id..last_id to the archive, proving the segment as it goes (a
    broken chain is never archived: it would hide what broke it). Its description."""
    start = chain_start(first_id)
    if start.problem is not None:
        raise ArchiveError(f"the audit chain is broken ({start.problem}): verify it first")
    after, count = first_id - 1, 0
    expected_id, expected_prev, first_prev = first_id, start.prev_hash, start.prev_hash
    last_hash, last_at = "", None
    sha256 = hashlib.sha256
    while after < last_id:
        rows = read_batch(after, last_id, READ_BATCH)
        if not rows:
            break
        lines = []
        for row in rows:
            event_id, prev_hash, stored = row[0], row[10], row[11]
            row_bytes = canonical_stored(row, row[9])
            if sha256(row_bytes).hexdigest() != stored:
                # Written before the column kept canonical text: judged on its value.
                row_bytes = canonical((*row[:9], stored_data(row[9]), row[10]))
                if sha256(row_bytes).hexdigest() != stored:
                    raise ArchiveError(f"audit row {event_id} no longer matches its hash")
            if event_id != expected_id or prev_hash != expected_prev:
                raise ArchiveError(
                    f"audit row {event_id} does not follow row {expected_id - 1}: "
                    "verify the chain before archiving"
                )
            lines.append(line(stored, row_bytes))
            expected_id, expected_prev, last_hash, last_at = event_id + 1, stored, stored, row[1]
        writer.write_lines("audit_events", TABLE, lines)
        count += len(rows)
        after = rows[-1][0]
    if count != last_id - first_id + 1:
        raise ArchiveError(f"audit rows {first_id}..{last_id} are not all there")
    return {
        "first_id": first_id,
        "last_id": last_id,
        "count": count,
        "first_prev_hash": first_prev,
        "last_hash": last_hash,
        # When the last archived event was recorded: the log now starts after it.
        "last_at": iso_utc(last_at) if last_at is not None else None,
    }


def seal_and_delete(segment: dict[str, Any], folder: Path) -> AuditEvent:
    """Append the seal, then delete the segment, in this transaction (the caller commits;
    the seal and the deletion commit together or not at all). The seal's line is left in
    seal.json.pending, renamed by `confirm_seal` once committed."""
    manifest_sha256 = sha256_of(folder / MANIFEST)
    first_id, last_id = segment["first_id"], segment["last_id"]
    seal = record(
        SEAL_ACTION,
        None,
        ("auditsegment", f"{first_id}-{last_id}"),
        first_id=first_id,
        last_id=last_id,
        count=segment["count"],
        last_hash=segment["last_hash"],
        last_at=segment["last_at"],
        archive_sha256=manifest_sha256,
        archive=folder.name,
    )
    seal_bytes = canonical(event_values(seal))
    (folder / PENDING_SEAL).write_bytes(line(seal.hash, seal_bytes) + b"\n")
    allow_retention_in_this_transaction()
    for start in range(first_id, last_id + 1, DELETE_BATCH):
        end = min(start + DELETE_BATCH - 1, last_id)
        db.session.execute(
            delete(AuditEvent)
            .where(AuditEvent.id >= start, AuditEvent.id <= end)
            .execution_options(synchronize_session=False)
        )
    return seal


def confirm_seal(folder: Path) -> None:
    pending = folder / PENDING_SEAL
    if pending.exists():
        pending.rename(folder / SEAL_FILE)


# -- proving an archive from its files alone ------------------------------------------------


@dataclass
class SegmentProof:
    folder: Path
    first_id: int = 0
    last_id: int = 0
    count: int = 0
    first_prev_hash: str = ""
    last_hash: str = ""
    seal_hash: str = ""
    sealed: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _values(row: dict[str, Any]) -> tuple[Any, ...]:
    created = datetime.fromisoformat(row["created_at"].removesuffix("Z"))
    return (
        row["id"],
        created,
        row["actor_id"],
        row["actor_label"],
        row["ip"],
        row["user_agent"],
        row["action"],
        row["target_type"],
        row["target_id"],
        row["data"],
        row["prev_hash"],
    )


def _parse(raw: bytes) -> tuple[str, dict[str, Any], bool]:
    """(stored hash, row, whether the row's hash holds), recomputed with chain.canonical
    over the row as archived (or its bytes as written, for a row whose stored data text
    was not canonical)."""
    stored, row_bytes = split_line(raw)
    row = json.loads(row_bytes)
    if not isinstance(row, dict):
        raise ValueError("not a row")
    # The bytes as archived are the canonical form for every row written since data is
    # stored canonically: one hash; the canonical form is rebuilt only when they differ.
    intact = hashlib.sha256(row_bytes).hexdigest() == stored
    if not intact:
        intact = hashlib.sha256(canonical(_values(row))).hexdigest() == stored
    return stored, row, intact


def prove_folder(folder: Path, with_seal: bool = True) -> SegmentProof | None:
    """Prove one run's archived segment: the manifest's SHA-256s and counts, every row's
    hash and link, and the seal (its own hash, the manifest's SHA-256 and the segment's
    last hash it names; `with_seal=False` before the seal is written). None when the
    folder holds no audit segment."""
    manifest = read_manifest(folder)
    segment = manifest.get("audit_segment")
    if not segment:
        return None
    proof = SegmentProof(
        folder,
        first_id=segment["first_id"],
        last_id=segment["last_id"],
        count=segment["count"],
        first_prev_hash=segment["first_prev_hash"],
        last_hash=segment["last_hash"],
    )
    entry = next((f for f in manifest["files"] if f["table"] == TABLE), None)
    if entry is None:
        proof.problems.append("the manifest lists no audit_events file")
        return proof
    try:
        lines = read_lines(folder, entry)
    except ArchiveError as exc:
        proof.problems.append(str(exc))
        return proof
    expected_id, expected_prev, last_hash = proof.first_id, proof.first_prev_hash, ""
    for number, raw in enumerate(lines, start=1):
        try:
            stored, row, intact = _parse(raw)
        except (ValueError, KeyError, TypeError) as exc:
            proof.problems.append(f"line {number}: not an archived event ({exc})")
            return proof
        event_id = row["id"]
        if not intact:
            proof.problems.append(f"row {event_id}: its contents no longer match its hash")
        if event_id != expected_id:
            proof.problems.append(f"row {event_id}: expected row {expected_id} here")
        elif row["prev_hash"] != expected_prev:
            proof.problems.append(f"row {event_id}: does not follow row {event_id - 1}")
        expected_id, expected_prev, last_hash = event_id + 1, stored, stored
    if expected_id - 1 != proof.last_id or len(lines) != proof.count:
        proof.problems.append(
            f"the segment should hold rows {proof.first_id}..{proof.last_id} ({proof.count})"
        )
    if last_hash != proof.last_hash:
        proof.problems.append("the last row's hash is not the segment's last hash")
    if with_seal:
        _prove_seal(folder, proof)
    return proof


def _prove_seal(folder: Path, proof: SegmentProof) -> None:
    path = folder / SEAL_FILE
    if not path.is_file():
        proof.sealed = False
        proof.problems.append(
            "no seal.json: the run stopped before the seal committed (its rows were kept)"
            if (folder / PENDING_SEAL).exists()
            else "no seal.json"
        )
        return
    try:
        stored, seal, intact = _parse(path.read_bytes().strip())
    except (ValueError, KeyError, TypeError) as exc:
        proof.problems.append(f"seal.json: not an archived event ({exc})")
        return
    proof.seal_hash = stored
    data = seal.get("data") or {}
    if not intact or seal.get("action") != SEAL_ACTION:
        proof.problems.append("seal.json: the seal no longer matches its hash")
    if data.get("archive_sha256") != sha256_of(folder / MANIFEST):
        proof.problems.append("manifest.json is not the one the seal names (its SHA-256)")
    named = (data.get("first_id"), data.get("last_id"), data.get("count"), data.get("last_hash"))
    if named != (proof.first_id, proof.last_id, proof.count, proof.last_hash):
        proof.problems.append("the seal names another segment than the manifest")


def prove_archive(directory: Path) -> list[SegmentProof]:
    """Every archived segment in `directory` (one run's folder, or ARCHIVE_DIR with a
    folder per run), in id order, each proved and each following the one before."""
    folders = [directory] if (directory / MANIFEST).is_file() else sorted(directory.iterdir())
    proofs = []
    for folder in folders:
        if not (folder / MANIFEST).is_file():
            continue
        try:
            proof = prove_folder(folder)
        except ArchiveError as exc:
            proof = SegmentProof(folder, problems=[str(exc)])
        if proof is not None:
            proofs.append(proof)
    proofs.sort(key=lambda p: p.first_id)
    previous: SegmentProof | None = None
    for proof in proofs:
        if previous is None:
            if proof.first_id == 1 and proof.first_prev_hash != GENESIS_HASH:
                proof.problems.append("row 1 does not start the chain")
        elif proof.first_id != previous.last_id + 1:
            proof.problems.append(
                f"starts at row {proof.first_id}, but the segment before ends at row "
                f"{previous.last_id}"
            )
        elif proof.first_prev_hash != previous.last_hash:
            proof.problems.append(f"row {proof.first_id} does not follow the segment before")
        previous = proof
    return proofs
