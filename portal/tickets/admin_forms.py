"""Forms of the help desk's setup pages."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..forms import PortalForm
from .setup_models import LEVELS, PRIORITIES

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _name(label: str = "Name") -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired("Give it a name."),
            Length(max=80, message="Use at most 80 characters."),
        ],
    )


class TeamForm(PortalForm):
    name = _name()


class TeamEditForm(PortalForm):
    name = _name()
    lead = SelectField("Lead", choices=[], validate_choice=True)
    escalation_level = SelectField(
        "Takes escalations to",
        choices=[SelectChoice("", "—"), *[SelectChoice(lv, lv) for lv in LEVELS[1:]]],
    )


class MemberForm(PortalForm):
    user = SelectField("Person", choices=[], validate_choice=True)


class CategoryForm(PortalForm):
    name = _name()
    team = SelectField("Default team", choices=[], validate_choice=True)


class RuleForm(PortalForm):
    name = _name()
    match = StringField(
        "Words or pattern",
        validators=[
            DataRequired("Give the words or the pattern to look for."),
            Length(max=500, message="Use at most 500 characters."),
        ],
        description="Words: any one of them, whole words, any case. Or tick “pattern” for "
        "a regular expression.",
    )
    is_regex = BooleanField("A regular expression")
    team = SelectField("Team", choices=[], validate_choice=True)
    category = SelectField("Category", choices=[], validate_choice=True)
    priority = SelectField(
        "Suggested priority",
        choices=[SelectChoice("", "—"), *[SelectChoice(p, p.capitalize()) for p in PRIORITIES]],
    )
    is_active = BooleanField("Active", default=True)


class PolicyForm(PortalForm):
    response_minutes = IntegerField(
        "First response (minutes)",
        validators=[
            InputRequired("Give the response target in minutes."),
            NumberRange(min=1, max=525_600, message="Between 1 minute and a year."),
        ],
    )
    resolution_minutes = IntegerField(
        "Resolution (minutes)",
        validators=[
            InputRequired("Give the resolution target in minutes."),
            NumberRange(min=1, max=525_600, message="Between 1 minute and a year."),
        ],
    )
    calendar = SelectField("Calendar", choices=[], validate_choice=True)


class CalendarForm(PortalForm):
    name = _name()
    kind = SelectField(
        "Counts", choices=[SelectChoice("24x7", "24×7"), SelectChoice("business", "Business hours")]
    )
    timezone = StringField(
        "Time zone",
        validators=[DataRequired("Give a time zone, like Europe/Berlin."), Length(max=64)],
    )
    weekdays = SelectMultipleField(
        "Working days",
        choices=[SelectChoice(str(i), d) for i, d in enumerate(WEEKDAYS)],
        validators=[Optional()],
    )
    day_start = TimeField("Day starts", validators=[InputRequired("Give a time, like 09:00.")])
    day_end = TimeField("Day ends", validators=[InputRequired("Give a time, like 17:00.")])


class HolidayForm(PortalForm):
    day = DateField("Date", validators=[InputRequired("Give a date.")])
    name = StringField("Name", validators=[Optional(), Length(max=80)])
