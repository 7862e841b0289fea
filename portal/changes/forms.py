"""Change request forms: field validation and clear messages. Whether a step is allowed
is the services' business; these only check that what was typed is well formed."""

from __future__ import annotations

import re
from typing import Any

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..forms import PortalForm
from ..tickets.queries import ticket_number

MAX_TEXT = 20_000
LEVEL_CHOICES = [
    SelectChoice("1", "1 – low"),
    SelectChoice("2", "2 – medium"),
    SelectChoice("3", "3 – high"),
]
TYPE_CHOICES = [SelectChoice("normal", "Normal"), SelectChoice("emergency", "Emergency")]
STANDARD_CHOICE = SelectChoice("standard", "Standard (from its template)")
TICKET_SEPARATORS = re.compile(r"[\s,;]+")


def _text(label: str, max_length: int = MAX_TEXT, **kwargs: Any) -> TextAreaField:
    return TextAreaField(
        label,
        validators=[
            Optional(),
            Length(max=max_length, message=f"Use at most {max_length} characters."),
        ],
        **kwargs,
    )


class _WindowMixin:
    """A window is typed in the viewer's zone as two datetime-local inputs: both or
    neither."""

    window_start: DateTimeLocalField
    window_end: DateTimeLocalField

    def check_window_pair(self) -> bool:
        start, end = self.window_start, self.window_end
        if start.errors or end.errors or (start.data is None) == (end.data is None):
            return True
        empty = start if start.data is None else end
        empty.errors = [*empty.errors, "Give the window's start and its end, or neither."]
        return False


def _window_field(label: str) -> DateTimeLocalField:
    return DateTimeLocalField(
        label,
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
    )


class ChangeForm(_WindowMixin, PortalForm):
    """Filing a change, and editing a draft or rejected one (without the tickets)."""

    type = SelectField("Type", choices=TYPE_CHOICES, default="normal")
    title = StringField(
        "Title",
        validators=[
            DataRequired("Say in a few words what will change."),
            Length(max=200, message="Use at most 200 characters."),
        ],
    )
    description = _text("Description", description="Markdown works: **bold**, lists, `code`.")
    justification = _text("Business justification", description="Why now, and why at all.")
    success_criteria = _text("Success criteria", description="How you will know it worked.")
    impact = SelectField("Impact", choices=LEVEL_CHOICES, default="1")
    likelihood = SelectField("Likelihood of trouble", choices=LEVEL_CHOICES, default="1")
    implementation_plan = _text("Implementation plan")
    rollback_plan = _text("Rollback plan")
    services = SelectMultipleField("Affected services", choices=[], validate_choice=True)
    implementer = SelectField("Implementer", choices=[], validate_choice=True, default="")
    window_start = _window_field("Window starts")
    window_end = _window_field("Window ends")
    tickets = StringField(
        "Linked tickets",
        validators=[Optional(), Length(max=500, message="Use at most 500 characters.")],
        description="Ticket numbers, separated by commas: T-000123, T-000124.",
    )

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        return self.check_window_pair() and ok

    def validate_tickets(self, field: StringField) -> None:
        for token in self.ticket_tokens():
            if ticket_number(token) is None:
                raise ValidationError(f"“{token[:30]}” is not a ticket number (T-000123).")

    def ticket_tokens(self) -> list[str]:
        return [t for t in TICKET_SEPARATORS.split(self.tickets.data or "") if t]


class ScheduleForm(_WindowMixin, PortalForm):
    window_start = _window_field("Window starts")
    window_end = _window_field("Window ends")
    acknowledge_conflicts = BooleanField("I acknowledge these conflicts and schedule it anyway")
    freeze_reason = _text(
        "Why this emergency change cannot wait for the freeze to end", max_length=1000
    )

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        return self.check_window_pair() and ok


class VoteForm(PortalForm):
    decision = SelectField(
        "Decision",
        choices=[SelectChoice("approve", "Approve"), SelectChoice("reject", "Reject")],
    )
    comment = _text("Comment", max_length=2000, description="A rejection must say why.")


class FinishForm(PortalForm):
    # Completing and failing both need them (workflow.VALIDATION): asked for at the field.
    validation_results = TextAreaField(
        "Validation results",
        validators=[
            DataRequired("Write what validation showed."),
            Length(max=MAX_TEXT, message=f"Use at most {MAX_TEXT} characters."),
        ],
    )
    outcome = _text("Outcome")


class ReviewForm(PortalForm):
    findings = _text("What the review found")
    emergency_justified = BooleanField("The emergency was justified", default=True)


class CloseForm(PortalForm):
    lessons_learned = _text("Lessons learned")


class LinkTicketForm(PortalForm):
    ticket = StringField(
        "Link a ticket",
        validators=[
            DataRequired("Give a ticket number (T-000123)."),
            Length(max=30, message="Use at most 30 characters."),
        ],
    )

    def validate_ticket(self, field: StringField) -> None:
        if ticket_number(field.data or "") is None:
            raise ValidationError("That is not a ticket number (T-000123).")
