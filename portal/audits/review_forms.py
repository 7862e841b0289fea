"""The access-review forms: starting a campaign and deciding one person's access. Field
rules here; the rules between fields and people (comment required, own access, who may
grant what) are the service's (reviews.py), shown at their field."""

from __future__ import annotations

from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..forms import PortalForm
from ..security import Role
from ..timeutil import utcnow
from .review_models import DECISIONS, REVIEWER_RULES, SCOPES
from .reviews import COMMENT_MAX, TITLE_MAX


def _optional_int(value: object) -> int | None:
    if value in (None, ""):
        return None
    return int(value)  # type: ignore[call-overload]


def _choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class StartReviewForm(PortalForm):
    title = StringField("Title", validators=[Optional(), Length(max=TITLE_MAX)])
    scope = SelectField("Scope", choices=_choices(SCOPES), validators=[DataRequired()])
    team_id = SelectField("Team", coerce=_optional_int)
    reviewer_rule = SelectField(
        "Reviewers", choices=_choices(REVIEWER_RULES), validators=[DataRequired()]
    )
    due_date = DateField("Due date", validators=[Optional()])

    def validate_due_date(self, field: DateField) -> None:
        if field.data is not None and field.data <= utcnow().date():
            raise ValidationError("The due date must be after today.")


class DecisionForm(PortalForm):
    decision = SelectField("Decision", choices=_choices(DECISIONS), validators=[DataRequired()])
    new_role = SelectField(
        "New role",
        choices=[SelectChoice("", "—"), *(SelectChoice(r.value, r.label) for r in Role)],
        default="",
    )
    comment = TextAreaField(
        "Comment", validators=[Optional(), Length(max=COMMENT_MAX)], render_kw={"rows": 2}
    )
