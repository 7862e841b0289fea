"""Imports every model, so the metadata (and Alembic) knows every table."""

from .audits.block_models import IpBlock
from .audits.check_models import CheckResult, CheckRun, Finding
from .audits.models import AuditCheckpoint, AuditEvent, VerificationRun
from .audits.review_models import AccessReview, AccessReviewItem, AccessReviewReminder
from .audits.security_models import RateLimitHit, SecurityAlert
from .changes import models as _changes  # noqa: F401  (change requests and their setup)
from .job_records import JobRecord  # noqa: F401  (long jobs' own rows)
from .mail import OutboxMessage
from .reports.models import Export, ReportDelivery, ReportSubscription
from .reports.rollup_models import TicketDayCount
from .retention.models import RetentionPolicy, RetentionRun
from .tickets.extra_models import ActionItem, IncidentReview, SavedView, TicketAttachment
from .tickets.models import SlaEvent, SlaNotification, Ticket, TicketChange, TicketReply
from .tickets.setup_models import (
    Category,
    Holiday,
    RoutingRule,
    SlaCalendar,
    SlaPolicy,
    Team,
    team_members,
)
from .users.models import Invitation, PasswordReset, User, UserSession

__all__ = [
    "AccessReview",
    "AccessReviewItem",
    "AccessReviewReminder",
    "ActionItem",
    "AuditCheckpoint",
    "AuditEvent",
    "CheckResult",
    "CheckRun",
    "Finding",
    "Export",
    "ReportDelivery",
    "ReportSubscription",
    "RetentionPolicy",
    "RetentionRun",
    "IncidentReview",
    "SavedView",
    "SecurityAlert",
    "TicketAttachment",
    "Category",
    "Holiday",
    "Invitation",
    "IpBlock",
    "OutboxMessage",
    "PasswordReset",
    "RateLimitHit",
    "RoutingRule",
    "SlaCalendar",
    "SlaEvent",
    "SlaNotification",
    "SlaPolicy",
    "Team",
    "Ticket",
    "TicketChange",
    "TicketDayCount",
    "TicketReply",
    "User",
    "UserSession",
    "VerificationRun",
    "team_members",
]
