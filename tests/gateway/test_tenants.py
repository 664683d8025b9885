"""Tenants: their own provider keys, encrypted at rest, and never visible to another tenant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.conftest import OPERATOR_KEY, GatewayServer, make_settings

MESSAGES = [{"role": "user", "content": "Which key?"}]
KEY_A = "sk-tenant-a-secret-key-000111222333"
KEY_B = "sk-tenant-b-secret-key-444555666777"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def add_key(
    http: httpx.Client, token: str, value: str, name: str = "ACME_API_KEY"
) -> httpx.Response:
    return http.post("/api/provider-keys", json={"name": name, "value": value}, headers=auth(token))


def ask_acme(gateway: GatewayServer, token: str) -> str:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk:
        completion = sdk.chat.completions.create(model="acme/acme-large", messages=MESSAGES)
    return completion.choices[0].message.content or ""


def test_keys_api_add_list_rotate_delete(http: httpx.Client, token: str) -> None:
    response = add_key(http, token, KEY_A)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "object": "provider_key",
        "name": "ACME_API_KEY",
        "provider": "acme",
        "masked": "••••2333",
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    assert add_key(http, token, KEY_B).status_code == 409  # exists: rotate instead

    listing = http.get("/api/provider-keys", headers=auth(token)).json()
    assert [key["name"] for key in listing["data"]] == ["ACME_API_KEY"]
    assert "ACME_API_KEY" in listing["available_names"]
    assert KEY_A not in str(listing)

    rotated = http.post(
        "/api/provider-keys/ACME_API_KEY/rotate", json={"value": KEY_B}, headers=auth(token)
    )
    assert rotated.status_code == 200 and rotated.json()["masked"] == "••••6777"

    deleted = http.delete("/api/provider-keys/acme", headers=auth(token))  # provider name works
    assert deleted.json() == {"object": "provider_key", "name": "ACME_API_KEY", "deleted": True}
    assert http.get("/api/provider-keys", headers=auth(token)).json()["data"] == []
    assert http.delete("/api/provider-keys/ACME_API_KEY", headers=auth(token)).status_code == 404
    missing = http.post(
        "/api/provider-keys/ACME_API_KEY/rotate", json={"value": KEY_B}, headers=auth(token)
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "NOPE_API_KEY", "value": "sk-xxxxxxxxxxxx"}, "name"),
        ({"value": "sk-xxxxxxxxxxxx"}, "name"),
        ({"name": "ACME_API_KEY"}, "value"),
        ({"name": "ACME_API_KEY", "value": 12}, "value"),
        ({"name": "ACME_API_KEY", "value": "has space inside"}, "value"),
        ({"name": "ACME_API_KEY", "value": "line\nbreak"}, "value"),
    ],
)
def test_keys_api_rejects_bad_input(http: httpx.Client, token: str, body: dict, param: str) -> None:
    response = http.post("/api/provider-keys", json=body, headers=auth(token))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_tenant_key_is_used_only_for_that_tenant(
    gateway: GatewayServer, http: httpx.Client, new_tenant: Callable[[], str]
) -> None:
    alice, bob = new_tenant(), new_tenant()
    assert add_key(http, alice, KEY_A).status_code == 201
    assert ask_acme(gateway, alice) == f"key={KEY_A}"
    # Bob has no key and the operator set none: he cannot ride on Alice's.
    with pytest.raises(openai.PermissionDeniedError):
        ask_acme(gateway, bob)
    assert add_key(http, bob, KEY_B).status_code == 201
    assert ask_acme(gateway, bob) == f"key={KEY_B}"
    assert ask_acme(gateway, alice) == f"key={KEY_A}"
    # Bob cannot see, rotate or delete Alice's key.
    bobs = http.get("/api/provider-keys", headers=auth(bob)).json()["data"]
    assert [key["masked"] for key in bobs] == ["••••6777"]
    # Rotation takes effect at once (the decrypted-key cache is dropped).
    rotated = "sk-tenant-a-rotated-key-999888777666"
    http.post(
        "/api/provider-keys/ACME_API_KEY/rotate", json={"value": rotated}, headers=auth(alice)
    )
    assert ask_acme(gateway, alice) == f"key={rotated}"
    assert ask_acme(gateway, bob) == f"key={KEY_B}"
    # Deleting Bob's key removes it for Bob only.
    http.delete("/api/provider-keys/ACME_API_KEY", headers=auth(bob))
    with pytest.raises(openai.PermissionDeniedError):
        ask_acme(gateway, bob)
    assert ask_acme(gateway, alice) == f"key={rotated}"
    # Models follow the keys: acme is listed for Alice, not for Bob.

    def listed(token: str) -> set[str]:
        return {m["id"] for m in http.get("/v1/models", headers=auth(token)).json()["data"]}

    assert "acme/acme-large" in listed(alice)
    assert "acme/acme-large" not in listed(bob)


def test_operator_key_serves_tenants_without_their_own(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, environ={"ACME_API_KEY": OPERATOR_KEY})
    with GatewayServer(settings) as server, httpx.Client(base_url=server.url) as http:
        alice, bob = server.tenant("alice"), server.tenant("bob")
        assert add_key(http, alice, KEY_A).status_code == 201
        assert ask_acme(server, alice) == f"key={KEY_A}"  # the tenant's own key wins
        assert ask_acme(server, bob) == f"key={OPERATOR_KEY}"


def test_keys_are_encrypted_at_rest(gateway: GatewayServer, http: httpx.Client, token: str) -> None:
    secret = "sk-plaintext-must-never-hit-disk-1234567890"
    assert add_key(http, token, secret).status_code == 201
    assert ask_acme(gateway, token) == f"key={secret}"
    import sqlite3

    conn = sqlite3.connect(gateway.settings.database_path)
    try:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
        (ciphertext,) = conn.execute(
            "SELECT ciphertext FROM provider_keys WHERE ciphertext NOT LIKE '%' || ? || '%'",
            (secret,),
        ).fetchone()
    finally:
        conn.close()
    assert ciphertext.startswith("v1:")
    path = Path(gateway.settings.database_path)
    files = [path, *path.parent.glob("*.db-*")]
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data, path
        assert secret[:-4].encode() not in data, path  # not even most of it
    # Tenant tokens are stored only hashed.
    for path in files:
        assert token.encode() not in path.read_bytes()


def test_stored_key_cannot_be_moved_to_another_tenant(
    gateway: GatewayServer, http: httpx.Client, new_tenant: Callable[[], str]
) -> None:
    import sqlite3

    alice, mallory = new_tenant(), new_tenant()
    add_key(http, alice, KEY_A)
    add_key(http, mallory, "sk-mallory-own-key-0000000000")
    ask_acme(gateway, mallory)  # the gateway now caches Mallory's key
    conn = sqlite3.connect(gateway.settings.database_path)
    try:
        ids = dict(conn.execute("SELECT token_prefix, id FROM tenants").fetchall())
        alice_id, mallory_id = ids[alice[:8]], ids[mallory[:8]]
        # Someone with database access copies Alice's ciphertext over Mallory's.
        conn.execute(
            "UPDATE provider_keys SET ciphertext = (SELECT ciphertext FROM provider_keys "
            "WHERE tenant_id = ?) WHERE tenant_id = ?",
            (alice_id, mallory_id),
        )
        conn.commit()
    finally:
        conn.close()
    # Make the gateway reload Mallory's keys (as a rotation of another key would).
    gateway.gateway.providers.invalidate(mallory_id)
    with pytest.raises(openai.InternalServerError) as caught:
        ask_acme(gateway, mallory)
    assert KEY_A not in str(caught.value.body)
    assert caught.value.code == "stored_key_unreadable"


def test_dashboard_login_add_rotate_delete(gateway: GatewayServer, token: str) -> None:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as browser:
        page = browser.get("/dashboard/api-keys")
        assert page.status_code == 200 and 'action="/dashboard/login"' in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]

        bad = browser.post("/dashboard/login", data={"token": "pvk_nope"})
        assert bad.status_code == 401 and "not valid" in bad.text

        login = browser.post("/dashboard/login", data={"token": token})
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie

        page = browser.get("/dashboard/api-keys")
        assert "No keys stored yet" in page.text
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]

        # A form without the CSRF token (another site posting with the cookie) is refused.
        forged = browser.post(
            "/dashboard/api-keys", data={"action": "add", "name": "ACME_API_KEY", "value": KEY_A}
        )
        assert forged.status_code == 403

        added = browser.post(
            "/dashboard/api-keys",
            data={"action": "add", "name": "ACME_API_KEY", "value": KEY_A, "csrf": csrf},
        )
        assert added.status_code == 303
        page = browser.get(added.headers["location"])
        assert "Added ACME_API_KEY." in page.text
        assert "••••2333" in page.text and KEY_A not in page.text
        assert ask_acme(gateway, token) == f"key={KEY_A}"

        rotated = browser.post(
            "/dashboard/api-keys",
            data={"action": "rotate", "name": "ACME_API_KEY", "value": KEY_B, "csrf": csrf},
        )
        assert "Rotated" in browser.get(rotated.headers["location"]).text
        assert ask_acme(gateway, token) == f"key={KEY_B}"

        duplicate = browser.post(
            "/dashboard/api-keys",
            data={"action": "add", "name": "ACME_API_KEY", "value": KEY_A, "csrf": csrf},
        )
        assert duplicate.status_code == 409 and "already have" in duplicate.text

        # Deleting asks first: the button opens a confirmation naming the key, and a
        # delete post without its confirm=yes shows that again and deletes nothing.
        confirm = browser.get("/dashboard/api-keys", params={"delete": "ACME_API_KEY"})
        assert 'id="confirm-delete"' in confirm.text and "Delete ACME_API_KEY?" in confirm.text
        unconfirmed = browser.post(
            "/dashboard/api-keys",
            data={"action": "delete", "name": "ACME_API_KEY", "csrf": csrf},
        )
        assert unconfirmed.status_code == 200 and 'id="confirm-delete"' in unconfirmed.text
        assert ask_acme(gateway, token) == f"key={KEY_B}"
        deleted = browser.post(
            "/dashboard/api-keys",
            data={"action": "delete", "name": "ACME_API_KEY", "csrf": csrf, "confirm": "yes"},
        )
        page = browser.get(deleted.headers["location"])
        assert "Deleted ACME_API_KEY." in page.text and "No keys stored yet" in page.text

        out = browser.post("/dashboard/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert 'action="/dashboard/login"' in browser.get("/dashboard/api-keys").text


def test_dashboard_accepts_a_bearer_token_and_escapes_html(http: httpx.Client, token: str) -> None:
    page = http.get("/dashboard/api-keys", headers=auth(token))
    assert page.status_code == 200 and "Add a key" in page.text
    evil = http.post(
        "/dashboard/api-keys",
        data={"action": "add", "name": "<script>alert(1)</script>", "value": "x" * 20},
        headers=auth(token),
    )
    assert evil.status_code == 400
    assert "<script>" not in evil.text and "&lt;script&gt;" in evil.text
