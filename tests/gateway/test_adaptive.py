"""The adaptive router end to end: feedback, hand-over, restart, the judge, isolation."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from provara_kit.registry import ProviderSpec, Registry
from provara_kit.testing import CannedReply, ScriptedProvider
from provara_kit.types import ChatRequest, ChatResponse
from tests.gateway.conftest import GatewayServer, gateway_registry, make_settings
from tests.gateway.db import query, tenant_id

HELLO = [{"role": "user", "content": "hello"}]
CELL = {"x-provara-cell": "math/complex"}


def sdk(server: GatewayServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)


def feedback(server: GatewayServer, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/feedback", json=body, headers={"authorization": f"Bearer {token}"}
    )


def auto_models(client: openai.OpenAI, n: int, **kwargs: Any) -> set[str]:
    return {
        client.chat.completions.create(model="auto", messages=HELLO, **kwargs).model
        for _ in range(n)
    }


def feedback_rows(database: str, source: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT request_id, provider, model, cell, score FROM feedback WHERE source = :s",
        s=source,
    )


def test_auto_hands_over_after_min_samples_and_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, min_samples=5, router_seed=3)
    with GatewayServer(settings) as server:
        token = server.tenant("router")
        with sdk(server, token) as client:
            assert auto_models(client, 3, extra_headers=CELL) == {"local/echo"}  # cold start
            for n in range(5):
                good = client.chat.completions.create(
                    model="local/echo-anthropic", messages=HELLO, extra_headers=CELL
                )
                bad = client.chat.completions.create(
                    model="local/echo", messages=HELLO, extra_headers=CELL
                )
                assert (
                    feedback(server, token, {"completion_id": good.id, "score": 1}).json()["cell"]
                    == "math/complex"
                )
                assert feedback(server, token, {"request_id": bad.id, "thumbs": "down"}).is_success
                if n < 4:  # 4 samples: still the default
                    assert auto_models(client, 3, extra_headers=CELL) == {"local/echo"}
            assert auto_models(client, 10, extra_headers=CELL) == {"local/echo-anthropic"}
            # Without the header "hello" is chat/simple, a cell with no samples.
            assert auto_models(client, 3) == {"local/echo"}

    with GatewayServer(settings) as again:  # samples rebuilt from the feedback table
        own = again.gateway.router.samples(tenant_id(again.database, token), "math/complex")
        assert {model: (s.n, s.total) for model, s in own.items()} == {
            "local/echo-anthropic": (5, 5.0),
            "local/echo": (5, 0.0),
        }
        with sdk(again, token) as client:
            assert auto_models(client, 5, extra_headers=CELL) == {"local/echo-anthropic"}


def test_feedback_is_scoped_to_the_tenant(gateway: GatewayServer, new_tenant: Any) -> None:
    alice, bob = new_tenant(), new_tenant()
    with sdk(gateway, alice) as client:
        completion = client.chat.completions.create(model="local/echo", messages=HELLO)
    stolen = feedback(gateway, bob, {"completion_id": completion.id, "score": 0})
    unknown = feedback(gateway, bob, {"completion_id": "chatcmpl-nope", "score": 0})
    assert stolen.status_code == unknown.status_code == 404
    assert stolen.json()["error"]["code"] == "completion_not_found"
    assert "local" not in stolen.text  # nothing about alice's completion leaks
    assert feedback(gateway, bob, {"completion_id": completion.id, "score": 9}).status_code == 400
    ok = feedback(gateway, alice, {"completion_id": completion.id, "score": 0.5, "comment": "ok"})
    assert ok.status_code == 201
    assert ok.json() == {
        "object": "feedback",
        "completion_id": completion.id,
        "model": "local/echo",
        "cell": "chat/simple",
        "score": 0.5,
    }
    again = feedback(gateway, alice, {"completion_id": completion.id, "score": 1})
    assert again.status_code == 409
    assert feedback(gateway, alice, {"score": 1}).status_code == 400
    anonymous = httpx.post(f"{gateway.url}/v1/feedback", json={"completion_id": completion.id})
    assert anonymous.status_code == 401


class SlowJudge(ScriptedProvider):
    """A judge that takes its time and always says the same thing."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(0.3)
        return await super().complete(request)


def judge_registry() -> Registry:
    registry = gateway_registry()
    registry.register(
        ProviderSpec(
            name="judge",
            factory=lambda *, api_key, base_url, transport: SlowJudge(
                "judge",
                reply=CannedReply(chunks=("Correct and clear.\nSCORE: 7",)),
                models=("grader",),
                pricing={"judge/grader": (0, 0)},
            ),
            default_models=("grader",),
        )
    )
    return registry


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_the_judge_scores_a_share_of_completions_off_the_hot_path(tmp_path: Path) -> None:
    seed = 11
    settings = make_settings(tmp_path, judge_rate=0.5, judge_model="judge/grader", router_seed=seed)
    draws = random.Random(seed + 1)  # the judge's random source
    expected = sum(draws.random() < 0.5 for _ in range(10))
    assert expected == 5
    with GatewayServer(settings, registry=judge_registry()) as server:
        token = server.tenant("judged")
        with sdk(server, token) as client:
            ids = [
                client.chat.completions.create(model="local/echo", messages=HELLO).id
                for _ in range(10)
            ]
            judged_meanwhile = server.gateway.judge.scored
        # 0.3 s per judgement: the answers came back before the judgements were done.
        assert judged_meanwhile < expected
        wait_for(lambda: len(feedback_rows(server.database, "judge")) == expected)
        rows = feedback_rows(server.database, "judge")
        assert {row[0] for row in rows} <= set(ids)
        for row in rows:
            assert row[1:] == ("local", "echo", "chat/simple", pytest.approx(6 / 9))
        judge = server.gateway.judge
        assert (judge.offered, judge.scored, judge.dropped) == (expected, expected, 0)
        own = server.gateway.router.samples(tenant_id(server.database, token), "chat/simple")
        assert own["local/echo"].n == expected


def test_local_echo_as_judge_has_its_reply_parsed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, judge_rate=1.0, judge_model="local/echo")
    with GatewayServer(settings) as server:
        token = server.tenant("echo-judged")
        with sdk(server, token) as client:
            # The echo judge repeats its prompt, whose ANSWER part is this text.
            answered = client.chat.completions.create(
                model="local/echo-anthropic",
                messages=[{"role": "user", "content": "Self-assessment: SCORE: 9"}],
            )
            plain = client.chat.completions.create(model="local/echo", messages=HELLO)
        wait_for(lambda: server.gateway.judge.scored + server.gateway.judge.unparsed == 2)
        rows = feedback_rows(server.database, "judge")
        assert rows == [
            (answered.id, "local", "echo-anthropic", "chat/simple", pytest.approx(8 / 9))
        ]
        judge = server.gateway.judge
        assert judge.unparsed == 1  # "hello" has no score in it: not guessed
        assert judge.last_reply is not None and "SCORE: <integer 1-10>" in judge.last_reply
        assert plain.id not in {row[0] for row in rows}


def usage_rows(database: str, prefix: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT request_id, provider, model, priced, cost_picodollars FROM usage "
        "WHERE request_id LIKE :p ORDER BY id",
        p=prefix + "%",
    )


def test_streamed_completions_are_judged_and_every_grading_call_is_usage(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, judge_rate=1.0, judge_model="judge/grader")
    with GatewayServer(settings, registry=judge_registry()) as server:
        token = server.tenant("streamed-judged")
        with sdk(server, token) as client:
            chunks = list(
                client.chat.completions.create(model="local/echo", messages=HELLO, stream=True)
            )
            plain = client.chat.completions.create(model="local/echo", messages=HELLO)
        streamed_id = chunks[0].id
        wait_for(lambda: server.gateway.judge.scored == 2)
        rows = feedback_rows(server.database, "judge")
        assert sorted(row[0] for row in rows) == sorted([streamed_id, plain.id])
        wait_for(lambda: len(usage_rows(server.database, "judge-")) == 2)
        grading = usage_rows(server.database, "judge-")
        assert sorted(row[0] for row in grading) == sorted(
            [f"judge-{streamed_id}", f"judge-{plain.id}"]
        )
        assert all(row[1:] == ("judge", "grader", 1, 0) for row in grading)


def test_a_stream_not_drawn_keeps_no_text_and_is_not_judged(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, judge_rate=0.0, judge_model="judge/grader")
    with GatewayServer(settings, registry=judge_registry()) as server:
        token = server.tenant("never-judged")
        with sdk(server, token) as client:
            list(client.chat.completions.create(model="local/echo", messages=HELLO, stream=True))
        judge = server.gateway.judge
        assert (judge.offered, judge.scored) == (0, 0)
        assert usage_rows(server.database, "judge-") == []


def test_feedback_after_a_restart_finds_the_completion_through_its_usage(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with GatewayServer(settings) as server:
        token = server.tenant("remembers")
        other = server.tenant("someone-else")
        with sdk(server, token) as client:
            pinned = client.chat.completions.create(
                model="local/echo-anthropic", messages=HELLO, extra_headers=CELL
            )
            streamed = list(
                client.chat.completions.create(model="local/echo", messages=HELLO, stream=True)
            )
    with GatewayServer(settings) as again:  # a new process: nothing tracked in memory
        assert again.gateway.router.completion(pinned.id) is None
        assert feedback(again, other, {"completion_id": pinned.id, "score": 1}).status_code == 404
        graded = feedback(again, token, {"completion_id": pinned.id, "score": 1})
        assert graded.status_code == 201, graded.text
        assert graded.json()["model"] == "local/echo-anthropic"
        assert graded.json()["cell"] == "math/complex"
        thumbs = feedback(again, token, {"completion_id": streamed[0].id, "thumbs": "down"})
        assert thumbs.status_code == 201, thumbs.text
        assert (thumbs.json()["model"], thumbs.json()["cell"]) == ("local/echo", "chat/simple")
        assert feedback(again, token, {"completion_id": pinned.id, "score": 0}).status_code == 409
        own = again.gateway.router.samples(tenant_id(again.database, token), "math/complex")
        assert (own["local/echo-anthropic"].n, own["local/echo-anthropic"].total) == (1, 1.0)
