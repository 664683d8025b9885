"""The adaptive router's policy, without a server: cells, cold start, hand-over, cost."""

from __future__ import annotations

import random

import pytest

from provara_kit.types import ChatRequest
from reference_gateway.api.errors import GatewayError
from reference_gateway.api.feedback import parse_feedback
from reference_gateway.judge import parse_score
from reference_gateway.router import Router, classify
from reference_gateway.types import Tenant

TENANT = Tenant(id="t", name="t")
PRICING = {
    "p/default": (1, 1),
    "p/good": (1, 1),
    "p/dear": (400, 400),
    "p/cheap": (0.1, 0.1),
}


def request(text: str, **extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
    )


def router(**kwargs: object) -> Router:
    options: dict[str, object] = {
        "default_model": "p/default",
        "min_samples": 5,
        "rng": random.Random(7),
        "pricing": PRICING,
    }
    options.update(kwargs)
    return Router(**options)  # type: ignore[arg-type]


def feed(r: Router, cell: str, model: str, score: float, n: int, tenant: str = TENANT.id) -> None:
    for _ in range(n):
        r.add_sample(tenant, cell, model, score)


@pytest.mark.parametrize(
    ("text", "extra", "cell"),
    [
        ("hello there", {}, "chat/simple"),
        ("Fix this python function", {}, "code/simple"),
        ("Solve 3 + 4 * x = 19", {}, "math/simple"),
        ("Extract the names as JSON", {}, "extraction/simple"),
        (
            "what is the weather",
            {"tools": [{"type": "function", "function": {"name": "w"}}]},
            "tools/simple",
        ),
        ("tell me a story " * 100, {}, "chat/moderate"),
        ("x" * 9_000, {}, "chat/complex"),
    ],
)
def test_cells_are_derived_from_the_request(text: str, extra: dict[str, object], cell: str) -> None:
    assert classify(request(text, **extra)) == cell


def test_the_cell_header_overrides_and_is_validated() -> None:
    r = router()
    assert r.cell_of(request("hello"), "Code/Complex") == "code/complex"
    with pytest.raises(GatewayError) as info:
        r.cell_of(request("hello"), "poetry/huge")
    assert info.value.status == 400 and "x-provara-cell" in info.value.message


def test_cold_start_uses_the_default_until_min_samples() -> None:
    r = router()
    assert r.choose_model(request("hello"), TENANT) == "p/default"
    feed(r, "chat/simple", "p/good", 1.0, 4)
    assert {r.choose_model(request("hello"), TENANT) for _ in range(50)} == {"p/default"}
    decision = r.decide("chat/simple", tenant_id=TENANT.id)
    assert decision.reason.startswith("cold start")
    feed(r, "chat/simple", "p/good", 1.0, 1)
    feed(r, "chat/simple", "p/default", 0.0, 5)
    assert {r.choose_model(request("hello"), TENANT) for _ in range(50)} == {"p/good"}
    # Other cells are untouched.
    assert r.choose_model(request("Fix this python function"), TENANT) == "p/default"


def test_thompson_sampling_explores_between_close_models() -> None:
    r = router()
    feed(r, "chat/simple", "p/good", 0.6, 5)
    feed(r, "chat/simple", "p/default", 0.6, 5)
    picks = [r.choose_model(request("hello"), TENANT) for _ in range(200)]
    assert 40 < picks.count("p/good") < 160


def test_the_cost_weight_trades_quality_for_price() -> None:
    def pick(cost_weight: float) -> set[str]:
        r = router(cost_weight=cost_weight)
        feed(r, "chat/simple", "p/dear", 1.0, 20)
        feed(r, "chat/simple", "p/default", 0.5, 20)
        return {r.choose_model(request("hello"), TENANT) for _ in range(50)}

    # 2 input + 256 output tokens at $400/1M: $0.1032 expected, times 10 = 1.03 points.
    assert pick(0.0) == {"p/dear"}
    assert pick(10.0) == {"p/default"}
    decision = router(cost_weight=10.0)
    feed(decision, "chat/simple", "p/dear", 1.0, 20)
    rows = {
        c.model: c
        for c in decision.decide("chat/simple", tenant_id=TENANT.id, sample=False).candidates
    }
    assert rows["p/dear"].cost_term == pytest.approx(10 * (100 + 256) * 400 / 1e6)


def test_unpriced_models_are_excluded_from_auto() -> None:
    r = router()
    feed(r, "chat/simple", "p/unpriced", 1.0, 50)
    feed(r, "chat/simple", "p/default", 0.0, 5)
    assert {r.choose_model(request("hello"), TENANT) for _ in range(20)} == {"p/default"}
    (row,) = [
        c
        for c in r.decide("chat/simple", tenant_id=TENANT.id).candidates
        if c.model == "p/unpriced"
    ]
    assert not row.eligible and not row.priced and "unpriced" in row.reason


def test_an_unpriced_default_is_charged_the_dearest_candidate_cost() -> None:
    r = router(default_model="p/unpriced-default")
    feed(r, "chat/simple", "p/dear", 1.0, 10)
    rows = {
        c.model: c for c in r.decide("chat/simple", tenant_id=TENANT.id, sample=False).candidates
    }
    assert rows["p/unpriced-default"].cost_term == rows["p/dear"].cost_term > 0


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Solid answer.\nSCORE: 10", 1.0),
        ("SCORE: 1", 0.0),
        ("score = 7/10", 0.7),
        ("**Score:** 4", 1 / 3),
        ("I'd give it 3/5 overall", 0.6),
        ("Rating: 0.75", 0.75),
        ("Earlier I said SCORE: 2 but on reflection SCORE: 8", 7 / 9),
        ("no number here", None),
        ("SCORE: <integer 1-10>", None),
        ("SCORE: 42", None),
    ],
)
def test_judge_replies_are_parsed_robustly(reply: str, score: float | None) -> None:
    assert parse_score(reply) == (None if score is None else pytest.approx(score))


def test_feedback_bodies_are_validated() -> None:
    assert parse_feedback({"completion_id": "c", "score": 0.25}) == ("c", 0.25, None)
    assert parse_feedback({"request_id": "c", "thumbs": "up", "comment": "ok"}) == ("c", 1.0, "ok")
    assert parse_feedback({"completion_id": "c", "score": False})[1] == 0.0
    for bad in (
        {"score": 1},
        {"completion_id": "c"},
        {"completion_id": "c", "score": 2},
        {"completion_id": "c", "score": "meh"},
        {"completion_id": "c", "score": 1, "comment": 3},
    ):
        with pytest.raises(GatewayError):
            parse_feedback(bad)
