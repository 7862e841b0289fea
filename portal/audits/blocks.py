"""Blocking an address or a range (containment, admins): add, lift, and the list.

Each function checks its rule, changes the row, records the audit event and commits.
The per-request refusal itself lives in block_guard.py.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import and_, case, select

from .. import jobs
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..paging import Page, paginate
from ..timeutil import utcnow
from ..users.models import User
from . import record
from .block_models import NETWORK_MAX, REASON_MAX, IpBlock

# A block is a response to something happening now; a longer one is a policy, not
# containment, and would outlive the reason it was added for.
LONGEST = timedelta(days=365)
PER_PAGE = 25

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_network(text: str) -> Network:
    """An address or a CIDR range as typed (host bits allowed: 203.0.113.9/24 is
    203.0.113.0/24); ServiceError at the `network` field otherwise."""
    value = (text or "").strip()
    problem = ServiceError(
        "Give an IP address or a CIDR range, like 203.0.113.7, 203.0.113.0/24 or 2001:db8::/64.",
        field="network",
    )
    if not value or len(value) > NETWORK_MAX:
        raise problem
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise problem from None


def parse_address(text: str | None) -> Address | None:
    """A client address as the request gives it; an IPv4 address carried in IPv6
    (::ffff:203.0.113.7, as a dual-stack socket reports it) is read as that IPv4 one."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _active_for(network: str) -> IpBlock | None:
    now = utcnow()
    return db.session.scalar(
        select(IpBlock)
        .where(IpBlock.network == network, IpBlock.lifted_at.is_(None), IpBlock.expires_at > now)
        .limit(1)
    )


def add_block(
    network_text: str,
    reason: str,
    expires_at: datetime,
    actor: User,
    actor_address: str | None,
) -> IpBlock:
    """Refuse every request from `network_text` until `expires_at` (naive UTC).

    A range that holds the admin's own address is refused rather than confirmed: the
    very next request, this form's redirect, would be blocked with no page left to lift
    it from. The same holds when PROXY_COUNT is wrong and every request seems to come
    from the proxy: blocking "the attacker" would block everyone, and this refusal is
    what says so. Blocking one's own range is done from another address.
    """
    network = parse_network(network_text)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the address is blocked.", field="reason")
    if len(reason) > REASON_MAX:
        raise ServiceError(f"Use at most {REASON_MAX} characters.", field="reason")
    now = utcnow()
    if expires_at <= now:
        raise ServiceError("The block must end in the future.", field="expires")
    if expires_at - now > LONGEST:
        raise ServiceError("A block lasts at most 365 days.", field="expires")
    own = parse_address(actor_address)
    if own is not None and own in network:
        raise ServiceError(
            f"{network} includes your own address ({own}): you would lock yourself out. "
            "Block a narrower range, or add this block from another address.",
            field="network",
        )
    existing = _active_for(str(network))
    if existing is not None:
        raise Conflict(
            f"{network} is already blocked (until {existing.expires_at:%Y-%m-%d %H:%M} UTC); "
            "lift that block first to change it.",
            field="network",
        )
    block = IpBlock(
        network=str(network),
        reason=reason,
        created_by_id=actor.id,
        created_at=now,
        expires_at=expires_at,
        hits=0,
    )
    db.session.add(block)
    db.session.flush()
    record("ip.blocked", actor, block, network=block.network, reason=reason, until=expires_at)
    jobs.commit()
    return block


def lift_block(block: IpBlock, actor: User) -> None:
    """End a block before its expiry."""
    if block.lifted_at is not None:
        raise Conflict("This block was already lifted.")
    if block.expires_at <= utcnow():
        raise Conflict("This block has already expired.")
    block.lifted_at, block.lifted_by_id = utcnow(), actor.id
    record(
        "ip.unblocked",
        actor,
        block,
        network=block.network,
        before={"until": block.expires_at},
        after={"lifted_at": block.lifted_at},
    )
    jobs.commit()


def blocks_page(page: int) -> Page[IpBlock]:
    """Active blocks first (soonest to end first), then expired and lifted ones, newest
    first."""
    now = utcnow()
    active = and_(IpBlock.lifted_at.is_(None), IpBlock.expires_at > now)
    stmt = select(IpBlock).order_by(
        case((active, 0), else_=1),
        case((active, IpBlock.expires_at), else_=None),
        IpBlock.created_at.desc(),
        IpBlock.id.desc(),
    )
    return paginate(stmt, page, PER_PAGE)


def get_block(block_id: int) -> IpBlock | None:
    return db.session.get(IpBlock, block_id) if 0 < block_id < 2**31 else None
