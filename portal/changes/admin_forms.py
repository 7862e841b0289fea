"""Forms of the change process's setup pages."""

from __future__ import annotations

from datetime import datetime
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
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from ..forms import PortalForm
from .risk import LEVELS, RISKS

# Converting a far-off year to UTC overflows datetime (year 0 or 10000): a freeze is
# planned within years, so anything outside this range is a typing slip.
FIRST_YEAR, LAST_YEAR = 2000, 2199
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
DESCRIPTION_MAX = 2000
PLAN_MAX = 20_000


def _name(max_length: int) -> StringField:
    return StringField(
        "Name",
        validators=[
            DataRequired("Give it a name."),
            Length(max=max_length, message=f"Use at most {max_length} characters."),
        ],
    )


def _description() -> TextAreaField:
    return TextAreaField(
        "Description",
        validators=[
            Optional(),
            Length(max=DESCRIPTION_MAX, message=f"Use at most {DESCRIPTION_MAX} characters."),
        ],
        render_kw={"rows": 3},
    )


def _plan(label: str, missing: str) -> TextAreaField:
    return TextAreaField(
        label,
        validators=[
            DataRequired(missing),
            Length(max=PLAN_MAX, message=f"Use at most {PLAN_MAX} characters."),
        ],
        render_kw={"rows": 5},
    )


def _in_range(form: Any, field: DateTimeLocalField) -> None:
    value: datetime | None = field.data
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValidationError(f"Give a date between {FIRST_YEAR} and {LAST_YEAR}.")


def _local_time(label: str, missing: str) -> DateTimeLocalField:
    # The input's value uses the first format: the one browsers write themselves.
    return DateTimeLocalField(
        label,
        format=LOCAL_FORMATS,
        invalid_value_message="Give a date and a time, like 2030-12-24 18:00.",
        validators=[InputRequired(missing), _in_range],
    )


class RatingField(SelectField):
    """A rating from 1 to 3: anything else, a word or a number out of range, gets the one
    message that says what is expected (not WTForms' two about coercion and choices)."""

    message = "Rate it from 1 (low) to 3 (high)."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The field macro picks Bootstrap's select styling by this name.
        self.type = "SelectField"

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist:
            try:
                self.data = int(valuelist[0])
            except ValueError:
                self.data = None

    def pre_validate(self, form: Any) -> None:
        if self.data not in LEVELS:
            raise ValidationError(self.message)


def _rating(label: str) -> RatingField:
    return RatingField(
        label,
        coerce=int,
        choices=[
            SelectChoice(level, f"{level} — {word}")
            for level, word in zip(LEVELS, RISKS, strict=True)
        ],
        default=LEVELS[0],
    )


class ServicesField(SelectMultipleField):
    """WTForms would repeat every unknown value in its message, however long."""

    def pre_validate(self, form: Any) -> None:
        known = {str(choice[0]) for choice in self.iter_choices()}
        if any(value not in known for value in self.data or []):
            raise ValidationError("Choose services from the list.")


class ServiceForm(PortalForm):
    name = _name(80)
    owner = SelectField(
        "Owner",
        choices=[],
        validate_choice=True,
        validators=[DataRequired("Choose an active person as the owner.")],
        description="Hears about every change scheduled on the service.",
    )
    description = _description()


class ServiceEditForm(ServiceForm):
    is_active = BooleanField("Active", description="Retired services stay on past changes.")


class FreezeForm(PortalForm):
    starts_at = _local_time("Starts", "Give the date and time the freeze starts.")
    ends_at = _local_time("Ends", "Give the date and time the freeze ends.")
    reason = StringField(
        "Reason",
        validators=[
            DataRequired("Say why changes are frozen."),
            Length(max=500, message="Use at most 500 characters."),
        ],
    )


class TemplateForm(PortalForm):
    name = _name(120)
    description = _description()
    implementation_plan = _plan(
        "Implementation plan", "A standard change needs its implementation plan."
    )
    rollback_plan = _plan("Rollback plan", "A standard change needs its rollback plan.")
    services = ServicesField(
        "Services",
        choices=[],
        validate_choice=True,
        validators=[InputRequired("Choose at least one service.")],
        render_kw={"size": 6},
    )
    impact = _rating("Impact")
    likelihood = _rating("Likelihood")
    is_active = BooleanField("Active", default=True)
