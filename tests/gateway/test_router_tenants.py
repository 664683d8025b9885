"""The router per tenant: own feedback, the gateway-wide prior and its weight, the page."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from provara_kit.errors import ConfigurationError
from provara_kit.types import ChatRequest
from reference_gateway.app import create_app
from reference_gateway.config import Settings
from reference_gateway.router import Posterior, Router
from reference_gateway.types import Tenant
from tests.gateway.conftest import GatewayServer, make_settings

CELL = "chat/simple"
PRICING = {"p/default": (1, 1), "p/good": (1, 1), "p/other": (1, 1)}
A, B, C = Tenant("a", "a"), Tenant("b", "b"), Tenant("c", "c")
HELLO = ChatRequest.model_validate(
    {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
)


def router(seed: int = 7, **kwargs: object) -> Router:
    options: dict[str, object] = {
        "default_model": "p/default",
        "min_samples": 5,
        "rng": random.Random(seed),
        "pricing": PRICING,
    }
    options.update(kwargs)
    return Router(**options)  # type: ignore[arg-type]


def feed(r: Router, tenant: Tenant, model: str, score: float, n: int, cell: str = CELL) -> None:
    for _ in range(n):
        r.add_sample(tenant.id, cell, model, score)


def picks(r: Router, tenant: Tenant, n: int = 100) -> Counter[str]:
    return Counter(r.choose_model(HELLO, tenant, cell=CELL) for _ in range(n))


def test_the_prior_weight_defaults_to_min_samples() -> None:
    assert router(min_samples=7).prior_weight == 7
    assert router(min_samples=7, prior_weight=0).prior_weight == 0
    assert router(prior_weight=2.5).prior_weight == 2.5
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="prior_weight"):
            router(prior_weight=bad)


def test_a_new_tenant_starts_from_the_gateway_wide_figures() -> None:
    r = router()
    feed(r, A, "p/good", 1.0, 1)
    assert set(picks(r, B, 20)) == {"p/default"}  # cold, and B's view of the cell is kept
    feed(r, A, "p/good", 1.0, 39)
    feed(r, A, "p/default", 0.0, 40)
    # A's 40 samples count as W = 5 for B: Beta(1 + 5, 1) and Beta(1, 1 + 5).
    assert r.posterior(B.id, CELL, "p/good") == Posterior(6.0, 1.0, 5.0)
    assert r.posterior(B.id, CELL, "p/default") == Posterior(1.0, 6.0, 5.0)
    assert picks(r, B)["p/good"] > 90  # the view B had cached was dropped by A's samples
    # A's own posterior is its own samples (no one else has any).
    assert r.posterior(A.id, CELL, "p/good") == Posterior(41.0, 1.0, 40.0)


def test_a_tenants_own_feedback_outweighs_the_prior() -> None:
    r = router()
    feed(r, A, "p/good", 1.0, 200)
    feed(r, A, "p/default", 0.0, 200)
    feed(r, B, "p/good", 0.0, 30)
    feed(r, B, "p/default", 1.0, 30)
    # B: 30 of its own against 5 of A's, per model.
    assert r.posterior(B.id, CELL, "p/good") == Posterior(6.0, 31.0, 35.0)
    assert picks(r, B)["p/default"] > 95
    assert picks(r, A)["p/good"] > 95


@pytest.mark.parametrize("volume", [1, 3, 5, 6, 50, 5_000])
@pytest.mark.parametrize("score", [0.0, 0.3, 1.0])
def test_other_tenants_move_a_posterior_by_at_most_the_prior_weight(
    volume: int, score: float
) -> None:
    r = router(prior_weight=4)
    feed(r, B, "p/good", 0.5, 3)
    alone = r.posterior(B.id, CELL, "p/good")
    feed(r, A, "p/good", score, volume)
    feed(r, C, "p/good", 1 - score, volume)
    moved = r.posterior(B.id, CELL, "p/good")
    shift = (moved.alpha - alone.alpha) + (moved.beta - alone.beta)
    assert shift == pytest.approx(min(2 * volume, 4))
    assert moved.samples == 3 + min(2 * volume, 4)
    # The prior's share is the others' mean: half 'score', half '1 - score'.
    assert moved.alpha - alone.alpha == pytest.approx(shift / 2)


def test_with_no_prior_weight_other_tenants_change_nothing() -> None:
    def choices(others: bool) -> list[str]:
        r = router(seed=5, prior_weight=0)
        feed(r, B, "p/good", 0.6, 6)
        feed(r, B, "p/default", 0.5, 6)
        if others:
            feed(r, A, "p/good", 0.0, 500)
            feed(r, A, "p/default", 1.0, 500)
            feed(r, A, "p/other", 1.0, 500)
        assert r.posterior(B.id, CELL, "p/good") == Posterior(1 + 3.6, 1 + 2.4, 6)
        assert r.posterior(B.id, CELL, "p/other") == Posterior(1.0, 1.0, 0.0)
        assert r.decide(CELL, tenant_id=C.id).model == "p/default"  # C has nothing: cold
        return [r.choose_model(HELLO, B, cell=CELL) for _ in range(200)]

    alone = choices(others=False)
    assert 20 < alone.count("p/good") < 180  # B's two models are close: it explores
    assert choices(others=True) == alone  # the very same draws, the very same choices


def test_eligibility_counts_effective_samples() -> None:
    r = router(prior_weight=3)
    feed(r, A, "p/good", 1.0, 100)
    decision = r.decide(CELL, tenant_id=B.id)
    assert decision.model == "p/default" and decision.reason.startswith("cold start")
    (row,) = [c for c in decision.candidates if c.model == "p/good"]
    assert not row.eligible and row.samples == 3 and "3 of 5 effective samples" in row.reason
    feed(r, B, "p/good", 0.0, 1)
    assert r.decide(CELL, tenant_id=B.id).reason.startswith("cold start")
    feed(r, B, "p/good", 0.0, 1)  # 3 of A's + 2 of its own
    rows = {c.model: c for c in r.decide(CELL, tenant_id=B.id).candidates}
    assert rows["p/good"].eligible and rows["p/good"].samples == 5


def test_choose_model_draws_as_decide_does() -> None:
    routers = (router(seed=3), router(seed=3))
    for r in routers:
        feed(r, A, "p/good", 0.7, 9)
        feed(r, A, "p/other", 0.6, 9)
        feed(r, B, "p/default", 0.65, 9)
        feed(r, B, "p/other", 0.2, 2)
    for tenant in (A, B, C):
        fast = [routers[0].choose_model(HELLO, tenant, cell=CELL) for _ in range(100)]
        full = [
            routers[1].decide(CELL, tenant_id=tenant.id, input_tokens=1, output_tokens=256).model
            for _ in range(100)
        ]
        assert fast == full and len(set(fast)) > 1


def test_load_rebuilds_every_tenants_samples() -> None:
    built = router()
    samples = [
        (A, "chat/simple", "p/good", 1.0),
        (A, "chat/simple", "p/good", 0.25),
        (A, "code/simple", "p/other", 0.5),
        (B, "chat/simple", "p/good", 0.0),
        (B, "chat/simple", "p/default", 1.0),
    ]
    for tenant, cell, model, score in samples:
        built.add_sample(tenant.id, cell, model, score)
    rows = [
        ("a", "chat/simple", "p/good", 2, 1.25),
        ("a", "code/simple", "p/other", 1, 0.5),
        ("b", "chat/simple", "p/good", 1, 0.0),
        ("b", "chat/simple", "p/default", 1, 1.0),
    ]
    loaded = router()
    feed(loaded, C, "p/good", 1.0, 9, cell="math/simple")  # replaced by the load
    assert loaded.load(rows) == 5
    assert loaded.cells() == built.cells() == ["chat/simple", "code/simple"]
    assert loaded.samples(C.id, "math/simple") == {} and loaded.totals("math/simple") == {}
    for tenant in (A, B, C):
        for cell in built.cells():
            assert loaded.samples(tenant.id, cell) == built.samples(tenant.id, cell)
            for model in PRICING:
                assert loaded.posterior(tenant.id, cell, model) == built.posterior(
                    tenant.id, cell, model
                )
    assert loaded.totals("chat/simple")["p/good"].n == 3


def test_the_prior_weight_setting() -> None:
    assert Settings.from_env({}).router_prior_weight is None
    assert Settings.from_env({"PROVARA_ROUTER_PRIOR_WEIGHT": " 2.5 "}).router_prior_weight == 2.5
    assert Settings.from_env({"PROVARA_ROUTER_PRIOR_WEIGHT": "0"}).router_prior_weight == 0
    for bad in ("-1", "many", "nan", "inf", "1e12"):
        with pytest.raises(ConfigurationError, match="PROVARA_ROUTER_PRIOR_WEIGHT") as info:
            Settings.from_env({"PROVARA_ROUTER_PRIOR_WEIGHT": bad})
        assert "number" in str(info.value) or "between" in str(info.value)
    with pytest.raises(ConfigurationError, match="PROVARA_ROUTER_PRIOR_WEIGHT"):
        Settings(router_prior_weight=-0.5)


def test_the_gateway_routes_with_the_configured_prior_weight(tmp_path: Path) -> None:
    unset = create_app(make_settings(tmp_path, min_samples=3))
    assert unset.state.gateway.router.prior_weight == 3
    zero = create_app(make_settings(tmp_path, router_prior_weight=0))
    assert zero.state.gateway.router.prior_weight == 0


# -- end to end: feedback through the API, choices through auto, the dashboard page ---------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    settings = make_settings(tmp_path_factory.mktemp("router-tenants"), router_seed=1)
    with GatewayServer(settings) as running:
        yield running


def sdk(server: GatewayServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)


def grade(server: GatewayServer, token: str, model: str, cell: str, score: float, n: int) -> None:
    """``n`` completions of ``model`` in ``cell``, each graded ``score``."""
    with sdk(server, token) as client:
        for _ in range(n):
            completion = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "hello"}],
                extra_headers={"x-provara-cell": cell},
            )
            graded = httpx.post(
                f"{server.url}/v1/feedback",
                json={"completion_id": completion.id, "score": score},
                headers={"authorization": f"Bearer {token}"},
            )
            assert graded.status_code == 201, graded.text


def auto_models(server: GatewayServer, token: str, cell: str, n: int) -> set[str]:
    with sdk(server, token) as client:
        return {
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "hello"}],
                extra_headers={"x-provara-cell": cell},
            ).model
            for _ in range(n)
        }


def router_page(server: GatewayServer, token: str) -> str:
    response = httpx.get(
        f"{server.url}/dashboard/router", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return response.text.split("<main>")[1]


def cell_rows(html: str, cell: str) -> dict[str, tuple[str, ...]]:
    """Model -> (samples, mean score, expected cost, note) of one cell's table."""
    section = html.split(f'id="cell-{cell}"')[1].split("<h2")[0]
    return {
        match[0]: match[1:]
        for match in re.findall(
            r"<tr><td><code>([^<]+)</code></td><td class=num>(\d+)</td>"
            r"<td class=num>([\d.]+)</td><td class=num>(.*?)</td><td[^>]*>(.*?)</td></tr>",
            section,
        )
    }


def test_tenants_learn_apart_and_see_only_their_own_figures(server: GatewayServer) -> None:
    cell = "code/moderate"
    alice, bob, carol = (server.tenant(name) for name in ("alice", "bob", "carol"))
    grade(server, alice, "local/echo-anthropic", cell, 1.0, 20)
    grade(server, alice, "local/echo", cell, 0.0, 19)
    assert auto_models(server, alice, cell, 10) == {"local/echo-anthropic"}
    # Carol has sent nothing: she starts from the gateway-wide figures.
    assert auto_models(server, carol, cell, 10) == {"local/echo-anthropic"}
    # Bob's own feedback says the opposite, and outweighs the prior of 5 samples; alice's
    # choice does not move (bob's 24 samples weigh 5 in her posteriors, as hers in his).
    grade(server, bob, "local/echo-anthropic", cell, 0.0, 12)
    grade(server, bob, "local/echo", cell, 1.0, 12)
    assert auto_models(server, bob, cell, 10) == {"local/echo"}
    assert auto_models(server, alice, cell, 10) == {"local/echo-anthropic"}

    mine = router_page(server, alice)
    assert cell_rows(mine, cell) == {
        "local/echo": ("19", "0.000", "$0", "the pinned default, always a candidate"),
        "local/echo-anthropic": ("20", "1.000", "$0", "auto&#x27;s choice"),
    }
    assert 'class="choice">local/echo-anthropic</strong>' in mine
    assert "at most <strong>5</strong> samples" in mine

    bobs = router_page(server, bob)
    assert {m: r[:2] for m, r in cell_rows(bobs, cell).items()} == {
        "local/echo": ("12", "1.000"),
        "local/echo-anthropic": ("12", "0.000"),
    }
    assert 'class="choice">local/echo</strong>' in bobs
    numbers = set(re.findall(r"<td class=num>([\d.]+)</td>", bobs))
    assert numbers == {"12", "1.000", "0.000"}  # none of alice's counts (20, 19) or totals

    carols = router_page(server, carol)
    section = carols.split(f'id="cell-{cell}"')[1]
    assert 'class="choice">local/echo-anthropic</strong>' in section
    assert "No samples of yours in this cell" in section
    assert "<td class=num>" not in carols  # no figures at all: carol has none
