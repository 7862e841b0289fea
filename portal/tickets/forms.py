"""Ticket forms: field validation and clear messages."""

from __future__ import annotations

from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ..forms import PortalForm
from .models import STATUS_LABELS, TYPES
from .setup_models import PRIORITIES

MAX_TEXT = 20_000
PRIORITY_CHOICES = [SelectChoice(p, p.capitalize()) for p in PRIORITIES]


class NewTicketForm(PortalForm):
    type = SelectField(
        "Type",
        choices=[SelectChoice(t, t.capitalize()) for t in TYPES],
        default="request",
    )
    subject = StringField(
        "Subject",
        validators=[
            DataRequired("Say in a few words what you need."),
            Length(max=200, message="Use at most 200 characters."),
        ],
    )
    description = TextAreaField(
        "Description",
        validators=[
            Optional(),
            Length(max=MAX_TEXT, message=f"Use at most {MAX_TEXT} characters."),
        ],
        description="Markdown works: **bold**, lists, `code`, links.",
    )
    priority = SelectField(
        "Priority",
        choices=[SelectChoice("", "Let the help desk decide"), *PRIORITY_CHOICES],
        default="",
    )


class ReplyForm(PortalForm):
    body = TextAreaField(
        "Reply",
        validators=[
            DataRequired("Write something first."),
            Length(max=MAX_TEXT, message=f"Use at most {MAX_TEXT} characters."),
        ],
    )
    internal = BooleanField("Internal note (never shown to the requester)")


class StatusForm(PortalForm):
    status = SelectField("Status", choices=[SelectChoice(k, v) for k, v in STATUS_LABELS.items()])


class AssignForm(PortalForm):
    assignee = SelectField("Assignee", choices=[], validate_choice=True)


class FieldsForm(PortalForm):
    priority = SelectField("Priority", choices=PRIORITY_CHOICES)
    team = SelectField("Team", choices=[], validate_choice=True)
    category = SelectField("Category", choices=[], validate_choice=True)


class EscalateForm(PortalForm):
    reason = StringField(
        "Why does it need the next level?",
        validators=[
            DataRequired("Say why the ticket needs the next level."),
            Length(max=500, message="Use at most 500 characters."),
        ],
    )
