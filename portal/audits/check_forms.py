"""The form for accepting a finding's risk. Field rules here; whether the finding may be
accepted and how far ahead the expiry may lie are the service's (check_services.py)."""

from __future__ import annotations

from wtforms import DateField, TextAreaField
from wtforms.validators import InputRequired, Length

from ..forms import PortalForm
from .check_services import MIN_REASON


class AcceptRiskForm(PortalForm):
    reason = TextAreaField(
        "Why the risk is acceptable",
        validators=[
            InputRequired("Say why the risk is acceptable."),
            Length(
                min=MIN_REASON,
                max=2000,
                message=f"Say why in at least {MIN_REASON} characters (2,000 at most).",
            ),
        ],
    )
    until = DateField(
        "Accepted until (the finding comes back after this day)",
        validators=[InputRequired("Give the day the acceptance ends.")],
    )
