"""Tried as a person would, in Chromium: ten wrong passwords lock sign-in with a clear message,
and changing the password in one browser signs out the other."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "ada@example.com", "correct horse"


def sign_up(page: Page, url: str) -> None:
    page.goto(url + "/signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="How can I help?")).to_be_visible()


def sign_in(page: Page, url: str, password: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_ten_wrong_passwords_lock_sign_in(page: Page, browser: Browser, server):
    sign_up(page, server.url)
    other = browser.new_context().new_page()
    for _ in range(10):
        sign_in(other, server.url, "wrong horse")
        expect(other.get_by_text("Wrong email or password.")).to_be_visible()
    sign_in(other, server.url, PASSWORD)  # the right one, inside the locked window
    expect(other.get_by_role("heading", name="429 · Too Many Requests")).to_be_visible()
    expect(other.get_by_text("Too many failed sign-ins for this account.")).to_be_visible()
    expect(other.get_by_text("Try again in")).to_be_visible()
    other.context.close()


def test_changing_the_password_signs_out_the_other_browser(page: Page, browser: Browser, server):
    sign_up(page, server.url)
    other = browser.new_context().new_page()
    sign_in(other, server.url, PASSWORD)
    expect(other.get_by_role("heading", name="How can I help?")).to_be_visible()

    page.goto(server.url + "/settings/")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("a brand new passphrase")
    page.get_by_label("Password again").fill("a brand new passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    expect(page.get_by_text("password changed").first).to_be_visible()  # Recent activity

    other.reload()
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()  # signed out
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="How can I help?")).to_be_visible()  # still in
    other.context.close()
