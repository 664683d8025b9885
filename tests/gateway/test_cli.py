"""``provara-gateway``: tenants, the master-key check, and ``serve --dev`` for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from provara_kit.vault import generate_master_key
from reference_gateway.auth import hash_token
from reference_gateway.cli import main
from reference_gateway.store import connect
from tests.gateway.db import query, scalar


def test_tenants_create_prints_the_token_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = str(tmp_path / "gw.db")
    assert main(["tenants", "create", "acme corp", "--database", database]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("pvk_") and len(token) == 47
    assert "shown only this once" in err
    stored = query(database, "SELECT name, token_sha256 FROM tenants")
    assert stored == [("acme corp", hash_token(token))]

    assert main(["tenants", "create", "acme corp", "--database", database]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["tenants", "create", "bad/name", "--database", database]) == 1

    assert main(["tenants", "list", "--database", database]) == 0
    listing = capsys.readouterr().out
    assert "acme corp" in listing and token[:8] in listing and token not in listing


def test_serve_refuses_without_a_master_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVARA_MASTER_KEY", raising=False)
    assert main(["serve", "--database", str(tmp_path / "gw.db")]) == 2
    err = capsys.readouterr().err
    assert "PROVARA_MASTER_KEY is not set" in err and "generate_master_key" in err
    monkeypatch.setenv("PROVARA_MASTER_KEY", "password123")
    assert main(["serve", "--database", str(tmp_path / "gw.db")]) == 2
    assert "password123" not in capsys.readouterr().err


def test_bad_settings_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVARA_STREAM_TIMEOUT_MS", "soon")
    assert main(["tenants", "list", "--database", str(tmp_path / "gw.db")]) == 2
    assert "PROVARA_STREAM_TIMEOUT_MS" in capsys.readouterr().err


def test_vault_rotate_reencrypts_stored_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from provara_kit.vault import Vault, parse_master_key

    database = str(tmp_path / "gw.db")
    old, new = generate_master_key(), generate_master_key()
    token = Vault(parse_master_key(old)).encrypt(
        "sk-secret-value", tenant="ten_1", name="X_API_KEY"
    )
    with connect(database) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO tenants (id, name, token_sha256, token_prefix, created_at) "
                "VALUES ('ten_1', 'a', 'h', 'pvk_', 'now')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO provider_keys VALUES "
                "('ten_1', 'X_API_KEY', 'x', :token, '', 'now', 'now')"
            ),
            {"token": token},
        )
    monkeypatch.setenv("PROVARA_MASTER_KEY", new)
    monkeypatch.setenv("PROVARA_MASTER_KEY_PREVIOUS", old)
    assert main(["vault", "rotate", "--database", database]) == 0
    assert "re-encrypted 1 stored keys" in capsys.readouterr().err
    stored = scalar(database, "SELECT ciphertext FROM provider_keys")
    assert stored != token
    assert Vault(parse_master_key(new)).decrypt(stored, tenant="ten_1", name="X_API_KEY") == (
        "sk-secret-value"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one-process", "workers"])
def test_serve_dev_answers_out_of_the_box(tmp_path: Path, workers: list[str]) -> None:
    """What ``nox -s gateway`` runs: no master key, no tenant, no provider key."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVARA_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "reference_gateway.cli", "serve", "--dev"),
            *("--port", str(port), *workers),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        token = None
        deadline = time.monotonic() + 20
        while token is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if "export TOKEN=" in line:
                token = line.split("export TOKEN=")[1].strip()
        assert token is not None
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while time.monotonic() < deadline:
                try:
                    http.get("/healthz")
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            reply = http.post(
                "/v1/chat/completions",
                json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {token}"},
            )
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    key_file = tmp_path / "provara-gateway.dev-key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "provara-gateway.db").exists()
