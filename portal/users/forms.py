"""Forms of the users blueprint: field validation and clear messages."""

from __future__ import annotations

from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length

from ..forms import PortalForm
from ..security import Role
from .passwords import MAX_LENGTH

ROLE_CHOICES = [SelectChoice(r.value, r.label) for r in Role]


def _email_field(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            DataRequired("Enter an email address."),
            Length(max=254, message="An email address has at most 254 characters."),
            Email("Enter a valid email address, like name@example.com."),
        ],
        render_kw={"autocomplete": "email"},
    )


def _new_password_fields() -> tuple[PasswordField, PasswordField]:
    password = PasswordField(
        "New password",
        validators=[
            DataRequired("Choose a password."),
            Length(max=MAX_LENGTH, message=f"Use at most {MAX_LENGTH} characters."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[
            DataRequired("Repeat the password."),
            EqualTo("password", "The two passwords differ."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return password, confirm


class LoginForm(PortalForm):
    email = StringField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="Too long."),
        ],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Enter your password."),
            Length(max=MAX_LENGTH, message="Too long."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class InviteForm(PortalForm):
    email = _email_field()
    role = SelectField("Role", choices=ROLE_CHOICES, default="requester", validate_choice=True)


class AcceptInvitationForm(PortalForm):
    name = StringField(
        "Your name",
        validators=[
            DataRequired("Enter your name."),
            Length(max=120, message="Use at most 120 characters."),
        ],
        render_kw={"autocomplete": "name"},
    )
    password, confirm = _new_password_fields()


class ChangePasswordForm(PortalForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    password, confirm = _new_password_fields()


class ForgotPasswordForm(PortalForm):
    email = _email_field()


class ResetPasswordForm(PortalForm):
    password, confirm = _new_password_fields()


class RoleForm(PortalForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validate_choice=True)


class ConfirmForm(PortalForm):
    """A button that changes state: only the CSRF token travels."""
