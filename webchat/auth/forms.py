"""Sign-up and sign-in forms (Flask-WTF: CSRF-protected, validated server-side)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


def _new_password(label: str = "Password") -> PasswordField:
    """A new password; its rules (length, common passwords) are checked by the service."""
    return PasswordField(label, validators=[DataRequired(), Length(max=256)])


def _again() -> PasswordField:
    return PasswordField(
        "Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")]
    )


class SignUpForm(FlaskForm):
    """Email, a password (see ``services.check_new_password``), and the same password again."""

    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    password = _new_password()
    confirm = _again()


class ChangePasswordForm(FlaskForm):
    """The current password, a new one and the new one again."""

    current = PasswordField("Current password", validators=[DataRequired()])
    password = _new_password("New password")
    confirm = _again()


class ResetPasswordForm(FlaskForm):
    """A new password and the same again (from a reset link)."""

    password = _new_password("New password")
    confirm = _again()


class DeleteAccountForm(FlaskForm):
    """The account's email typed out, and its password."""

    confirmation = StringField("Type your email to confirm", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token (sign out everywhere, admin actions)."""
