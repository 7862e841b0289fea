"""The form that blocks an address: what, why, and until when (a duration or a time in
the admin's own zone)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from wtforms import DateTimeLocalField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..forms import PortalForm
from .block_models import NETWORK_MAX, REASON_MAX
from .blocks import LONGEST

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
UNITS = {"hours": 1, "days": 24}
# Converting a far-off year to UTC could overflow; a block ends within a year anyway.
FIRST_YEAR, LAST_YEAR = 2000, 2199


def _typed(field: Any) -> bool:
    return any((value or "").strip() for value in field.raw_data or [])


class BlockForm(PortalForm):
    network = StringField(
        "Address or range",
        validators=[
            DataRequired("Give an IP address or a CIDR range."),
            Length(max=NETWORK_MAX, message=f"Use at most {NETWORK_MAX} characters."),
        ],
        render_kw={"placeholder": "203.0.113.0/24", "autocomplete": "off"},
    )
    reason = StringField(
        "Reason",
        validators=[
            DataRequired("Say why the address is blocked."),
            Length(max=REASON_MAX, message=f"Use at most {REASON_MAX} characters."),
        ],
    )
    duration = StringField("For", render_kw={"inputmode": "numeric", "placeholder": "24"})
    unit = SelectField(
        "Unit",
        choices=[SelectChoice(unit, unit) for unit in UNITS],
        default="hours",
        validate_choice=False,
    )
    until = DateTimeLocalField(
        "Or until",
        format=LOCAL_FORMATS,
        invalid_value_message="Give a date and a time, like 2030-12-24 18:00.",
        validators=[Optional()],
    )

    def validate_unit(self, field: Any) -> None:
        if field.data not in UNITS:
            raise ValidationError("Choose hours or days.")

    def validate_duration(self, field: Any) -> None:
        text = (field.data or "").strip()
        if not text:
            # An unreadable end time has its own message at its field.
            if self.until.data is None and not _typed(self.until):
                raise ValidationError("Give how long the block lasts, or the time it ends.")
            return
        if not text.isascii() or not text.isdigit() or len(text) > 6:
            raise ValidationError("Give a whole number of hours or days, like 24.")
        hours = int(text) * UNITS.get(self.unit.data or "", 1)
        if not 1 <= hours <= LONGEST.total_seconds() // 3600:
            raise ValidationError("A block lasts from one hour to 365 days.")

    def validate_until(self, field: Any) -> None:
        value: datetime | None = field.data
        if value is None:
            return
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValidationError(f"Give a date between {FIRST_YEAR} and {LAST_YEAR}.")
        if (self.duration.data or "").strip():
            raise ValidationError("Give a duration or an end time, not both.")

    @property
    def length(self) -> timedelta | None:
        """The duration asked for, once the form is valid (None: an end time was given)."""
        text = (self.duration.data or "").strip()
        if not text:
            return None
        return timedelta(hours=int(text) * UNITS[self.unit.data])
