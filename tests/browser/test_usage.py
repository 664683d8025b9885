"""The usage page in a real browser: the signed-in tenant's usage, never another's."""

from __future__ import annotations

from tests.browser.browser import Browser
from tests.browser.pages import goto


def test_usage_page_shows_the_tenants_usage(signed_in: Browser) -> None:
    goto(signed_in, "Usage")
    assert signed_in.path == "/dashboard/usage"
    assert signed_in.find("#priced-total").text.startswith("$")
    text = signed_in.text()
    assert "echo" in text and "acme-large" in text
    assert "echo-anthropic" not in text  # the other tenant's only model
    signed_in.shot("usage")
