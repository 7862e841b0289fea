"""The form that sets how long one kind of record is kept."""

from __future__ import annotations

from wtforms import HiddenField, IntegerField
from wtforms.validators import DataRequired, InputRequired, NumberRange

from ..forms import PortalForm
from .kinds import MAX_DAYS


class PolicyForm(PortalForm):
    kind = HiddenField(validators=[DataRequired("Choose a kind of record.")])
    days = IntegerField(
        "Keep for (days)",
        validators=[
            InputRequired("Give the number of days."),
            NumberRange(min=1, max=MAX_DAYS, message=f"Between 1 and {MAX_DAYS:,} days."),
        ],
    )
