"""The base form every portal form extends: CSRF plus rules that hold for every field."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import SelectField
from wtforms.widgets import Select

# NUL and other control characters never belong in a field (PostgreSQL refuses NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QuickSelect(Select):
    """WTForms' select, each plain option written directly: its own rendering formats
    every attribute through Markup.format, and a ticket page draws a hundred options."""

    @classmethod
    def render_option(cls, choice: Any, **kwargs: Any) -> Markup:
        if kwargs or choice.render_kw or not isinstance(choice.value, str | int):
            return super().render_option(choice, **kwargs)
        label = choice.label if choice.label is not None else choice.value
        selected = " selected" if choice.selected else ""
        value, text = escape(str(choice.value)), escape(label)
        # Attributes in WTForms' own (sorted) order: the same HTML, only sooner.
        return Markup(f'<option{selected} value="{value}">{text}</option>')  # noqa: S704


class PortalForm(FlaskForm):
    class Meta:
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            field_class = unbound_field.field_class
            if (
                issubclass(field_class, SelectField)
                and type(field_class.widget) is Select
                and not field_class.widget.multiple
                and "widget" not in unbound_field.kwargs
            ):
                options["widget"] = QuickSelect()
            return super().bind_field(form, unbound_field, options)

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        for field in self:
            if isinstance(field.data, str) and _CONTROL.search(field.data):
                field.errors = [*field.errors, "Contains characters that are not allowed."]
                ok = False
        return ok

    def add_error(self, field_name: str | None, message: str) -> None:
        """Attach a service's refusal to the field it concerns (or the form as a whole)."""
        field = getattr(self, field_name, None) if field_name else None
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            self.form_errors.append(message)
