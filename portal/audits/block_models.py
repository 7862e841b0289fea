"""Blocked addresses: one row per IP or CIDR range refused at the door until it expires
or is lifted (portal/audits/block_guard.py does the refusing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User

# The longest CIDR text: a full IPv6 address (39 characters) and "/128".
NETWORK_MAX = 43
REASON_MAX = 200


class IpBlock(db.Model):
    __tablename__ = "ip_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised CIDR (`ipaddress.ip_network(strict=False)`): 203.0.113.0/24,
    # 203.0.113.7/32, 2001:db8::/64. Matching is done in Python, so any dialect works.
    network: Mapped[str] = mapped_column(String(NETWORK_MAX))
    reason: Mapped[str] = mapped_column(String(REASON_MAX))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Every block ends: a forgotten one must not refuse an address for ever.
    expires_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Requests refused, as written by the last flush (block_guard keeps newer ones in Redis).
    hits: Mapped[int] = mapped_column(default=0)

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id], lazy="joined")
    lifted_by: Mapped[User | None] = relationship(foreign_keys=[lifted_by_id], lazy="joined")

    # The guard reads the blocks not lifted and not yet expired.
    __table_args__ = (Index("ix_ip_blocks_active", "lifted_at", "expires_at"),)

    def is_active(self, now: datetime | None = None) -> bool:
        return self.lifted_at is None and self.expires_at > (now or utcnow())

    @property
    def state(self) -> str:
        if self.lifted_at is not None:
            return "lifted"
        return "active" if self.expires_at > utcnow() else "expired"

    def __repr__(self) -> str:
        return f"<IpBlock {self.id} {self.network}>"
