"""Sign-up and sign-in forms (Flask-WTF: CSRF-protected, validated server-side)."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in")


class SignUpForm(FlaskForm):
    """Email, a password of 8 to 256 characters, and the same password again."""

    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False)])
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(min=8, max=256, message="Use at least 8 and at most 256 characters."),
        ],
    )
    confirm = PasswordField(
        "Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")]
    )
