"""The base form every portal form extends: CSRF plus rules that hold for every field."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm

# NUL and other control characters never belong in a field (PostgreSQL refuses NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PortalForm(FlaskForm):
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
