"""What ``model: "auto"`` means: Thompson sampling per cell, with a cost weight.

A request falls into a **cell**, ``kind/complexity``: the kind (``code``, ``math``,
``extraction``, ``tools``, ``chat``) from the tools it offers and keywords in its system
prompt and last user message, the complexity (``simple``, ``moderate``, ``complex``) from
its length and number of turns. The header ``x-provara-cell: kind/complexity`` overrides
both.

Every completion's cell and model are remembered (a bounded in-memory map, completion id
-> tenant, cell, model) so feedback (``POST /v1/feedback``) and judge scores land on the
right ``(cell, model)``. Each ``(cell, model)`` keeps a Beta posterior of quality,
``Beta(1 + S, 1 + n - S)`` for ``n`` samples with scores summing to ``S`` (a uniform prior;
a score in [0, 1] is a fractional success).

The policy, per ``auto`` request in cell ``c``:

* **Cold start.** No model has ``min_samples`` (``PROVARA_MIN_SAMPLES``) samples in ``c``:
  the pinned default (``PROVARA_DEFAULT_MODEL``). Pinned requests' feedback and judge
  scores count toward their cell x model, which is how a cell bootstraps.
* **Candidates.** Models with at least ``min_samples`` samples in ``c`` that are priced
  (unpriced models are **excluded** from auto: their cost is unknown, and treating it as
  $0 would make them win on price), plus the default, always.
* **Choice.** For each candidate ``m`` draw ``q_m ~ Beta(1 + S, 1 + n - S)`` and pick the
  largest ``u_m = q_m - λ · E[cost_m]``, where ``λ`` is ``PROVARA_ROUTER_COST_WEIGHT``
  (quality points per USD, default 10) and ``E[cost_m]`` the request's expected USD cost
  from the pricing table: input tokens ``ceil(chars / 4)`` of the messages, output tokens
  ``max_tokens`` or a default per complexity (256 / 512 / 1024). An unpriced default is
  charged the dearest candidate's expected cost (the stated penalty: never free).

The random source is injectable (``rng``, or ``PROVARA_ROUTER_SEED``), so tests are
deterministic. Samples are persisted in the ``feedback`` table and the posteriors rebuilt
from it at start-up (:meth:`Router.load`).
"""

from __future__ import annotations

import math
import random
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from provara_kit.pricing import MODEL_PRICING, lookup_price
from provara_kit.types import ChatRequest
from reference_gateway.api.errors import GatewayError
from reference_gateway.types import Tenant

__all__ = [
    "AUTO",
    "CELL_HEADER",
    "COMPLEXITIES",
    "KINDS",
    "Candidate",
    "Decision",
    "Posterior",
    "Router",
    "Tracked",
    "classify",
]

AUTO = "auto"
CELL_HEADER = "x-provara-cell"
KINDS: tuple[str, ...] = ("code", "math", "extraction", "tools", "chat")
COMPLEXITIES: tuple[str, ...] = ("simple", "moderate", "complex")

DEFAULT_OUTPUT_TOKENS = {"simple": 256, "moderate": 512, "complex": 1024}
"""Expected output tokens when a request does not set ``max_tokens``."""
TYPICAL_INPUT_TOKENS = {"simple": 100, "moderate": 1_000, "complex": 4_000}
"""Input tokens of a typical request of each complexity (for the dashboard's scores)."""

_CELLS = {(kind, size): f"{kind}/{size}" for kind in KINDS for size in COMPLEXITIES}
"""One string object per cell, so the completions map does not hold a copy per request."""
_SCAN_CHARS = 4_000
_CODE = re.compile(
    r"```|\b(code|function|python|javascript|typescript|rust|golang|java|sql|regex|compile|"
    r"bug|debug|stack ?trace|refactor|def|class|import|api)\b"
)
_MATH = re.compile(
    r"\b(math|solve|equation|integral|derivative|prove|proof|theorem|calculate|compute|"
    r"probability|algebra|arithmetic)\b|\d\s*[-+*/^=]\s*\d"
)
_EXTRACTION = re.compile(
    r"\b(extract|extraction|parse|json|fields?|classify|label|entities|summari[sz]e|"
    r"table|csv)\b"
)


def classify(request: ChatRequest) -> str:
    """The request's cell, ``kind/complexity`` (see the module docstring)."""
    chars = 0
    turns = 0
    system = ""
    last_user = ""
    for message in request.messages:
        text = message.text()
        chars += len(text)
        if message.role == "user":
            turns += 1
            last_user = text
        elif message.role in ("system", "developer"):
            system = text
    if request.tools:
        kind = "tools"
    else:
        probe = f"{system[:_SCAN_CHARS]}\n{last_user[:_SCAN_CHARS]}".lower()
        if _CODE.search(probe):
            kind = "code"
        elif _MATH.search(probe):
            kind = "math"
        elif _EXTRACTION.search(probe) or "response_format" in (request.model_extra or {}):
            kind = "extraction"
        else:
            kind = "chat"
    if chars > 8_000 or turns > 6:
        complexity = "complex"
    elif chars > 1_000 or turns > 2:
        complexity = "moderate"
    else:
        complexity = "simple"
    return _CELLS[kind, complexity]


def parse_cell(value: str) -> str:
    """Validate an ``x-provara-cell`` header; a 400 naming the allowed values if wrong."""
    kind, slash, complexity = value.strip().lower().partition("/")
    if not slash or kind not in KINDS or complexity not in COMPLEXITIES:
        raise GatewayError(
            400,
            f"Invalid {CELL_HEADER} header {value[:64]!r}: expected kind/complexity with kind "
            f"one of {', '.join(KINDS)} and complexity one of {', '.join(COMPLEXITIES)}.",
            code="invalid_header",
        )
    return _CELLS[kind, complexity]


@dataclass(slots=True)
class Posterior:
    """Quality samples of one ``(cell, model)``: ``Beta(1 + total, 1 + n - total)``."""

    n: int = 0
    total: float = 0.0

    @property
    def alpha(self) -> float:
        return 1.0 + self.total

    @property
    def beta(self) -> float:
        return 1.0 + self.n - self.total

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def add(self, score: float) -> None:
        self.n += 1
        self.total += score


class Tracked(NamedTuple):
    """What the gateway remembers about one completion, for feedback and the judge."""

    tenant_id: str
    cell: str
    model: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model's standing in a cell: samples, posterior, cost and the utility used."""

    model: str
    n: int
    mean: float
    priced: bool
    eligible: bool
    reason: str
    expected_cost: Decimal | None
    cost_term: float
    utility: float
    """The posterior mean (or the Thompson draw, for a real decision) minus the cost term."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a cell routes and why."""

    cell: str
    model: str
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())


class Router:
    """Chooses the model for requests that ask for ``auto`` (see the module docstring)."""

    def __init__(
        self,
        *,
        default_model: str,
        min_samples: int,
        cost_weight: float = 10.0,
        rng: random.Random | None = None,
        pricing: Mapping[str, object] = MODEL_PRICING,
        max_tracked: int = 100_000,
    ) -> None:
        self.default_model = default_model
        self.min_samples = min_samples
        self.cost_weight = cost_weight
        self.rng = rng or random.Random()
        self.pricing = pricing
        self.max_tracked = max_tracked
        self.posteriors: dict[str, dict[str, Posterior]] = {}
        self._tracked: OrderedDict[str, Tracked] = OrderedDict()
        self._names: dict[str, str] = {}

    # -- cells and completions -------------------------------------------------------------

    def cell_of(self, request: ChatRequest, header: str | None = None) -> str:
        """The request's cell: the ``x-provara-cell`` header when sent, else derived."""
        return classify(request) if header is None else parse_cell(header)

    def track(self, completion_id: str, tenant_id: str, cell: str, model: str) -> None:
        """Remember a completion's tenant, cell and ``provider/model`` (bounded, oldest out)."""
        tracked = self._tracked
        model = self._names.setdefault(model, model)
        tracked[completion_id] = Tracked(tenant_id, cell, model)
        if len(tracked) > self.max_tracked:
            tracked.popitem(last=False)

    def completion(self, completion_id: str) -> Tracked | None:
        return self._tracked.get(completion_id)

    # -- samples ---------------------------------------------------------------------------

    def add_sample(self, cell: str, model: str, score: float) -> None:
        self.posteriors.setdefault(cell, {}).setdefault(model, Posterior()).add(score)

    def load(self, conn: sqlite3.Connection) -> int:
        """Rebuild the posteriors from the ``feedback`` table; returns the samples read."""
        self.posteriors.clear()
        rows = conn.execute(
            "SELECT cell, provider, model, count(*), sum(score) FROM feedback "
            "WHERE cell IS NOT NULL GROUP BY cell, provider, model"
        ).fetchall()
        for cell, provider, model, n, total in rows:
            self.posteriors.setdefault(cell, {})[f"{provider}/{model}"] = Posterior(n, total)
        return sum(row[3] for row in rows)

    # -- the policy ------------------------------------------------------------------------

    def _expected_cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        provider, _, model_id = model.partition("/")
        if not model_id:
            return None
        price = lookup_price(provider, model_id, self.pricing)
        return None if price is None else price.cost(input_tokens, output_tokens)

    def decide(
        self,
        cell: str,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        sample: bool = True,
    ) -> Decision:
        """The model for one request of ``cell``.

        ``sample`` draws from each posterior (Thompson sampling, what ``auto`` does);
        without it the posterior means are used, which is the cell's expected choice (what
        the dashboard shows). Token counts default to a typical request of the cell.
        """
        complexity = cell.partition("/")[2]
        if input_tokens is None:
            input_tokens = TYPICAL_INPUT_TOKENS.get(complexity, 1_000)
        if output_tokens is None:
            output_tokens = DEFAULT_OUTPUT_TOKENS.get(complexity, 512)
        stats = self.posteriors.get(cell, {})
        models = sorted({*stats, self.default_model})
        costs = {m: self._expected_cost(m, input_tokens, output_tokens) for m in models}
        rows: list[tuple[str, Posterior, bool, str]] = []
        for model in models:
            post = stats.get(model, Posterior())
            if model == self.default_model:
                rows.append((model, post, True, "the pinned default, always a candidate"))
            elif costs[model] is None:
                rows.append((model, post, False, "unpriced: excluded from auto"))
            elif post.n < self.min_samples:
                rows.append((model, post, False, f"{post.n} of {self.min_samples} samples"))
            else:
                rows.append((model, post, True, "enough samples"))
        eligible = [row for row in rows if row[2]]
        cold = len(eligible) == 1
        dearest = max((c for m, c in costs.items() if c is not None), default=Decimal(0))
        candidates: list[Candidate] = []
        for model, post, ok, reason in rows:
            cost = costs[model]
            charged = dearest if cost is None else cost
            cost_term = self.cost_weight * float(charged)
            if ok and sample and not cold:
                quality = self.rng.betavariate(post.alpha, post.beta)
            else:
                quality = post.mean
            candidates.append(
                Candidate(
                    model=model,
                    n=post.n,
                    mean=post.mean,
                    priced=cost is not None,
                    eligible=ok,
                    reason=reason,
                    expected_cost=cost,
                    cost_term=cost_term,
                    utility=quality - cost_term,
                )
            )
        if cold:
            return Decision(
                cell,
                self.default_model,
                f"cold start: no other model has {self.min_samples} samples (and a price) "
                "in this cell",
                tuple(candidates),
            )
        best = max((c for c in candidates if c.eligible), key=lambda c: c.utility)
        how = "Thompson draw" if sample else "posterior mean"
        return Decision(
            cell,
            best.model,
            f"highest {how} of quality minus {self.cost_weight:g} x expected USD cost",
            tuple(candidates),
        )

    def choose_model(self, request: ChatRequest, tenant: Tenant, *, cell: str | None = None) -> str:
        """The ``provider/model`` to serve ``request`` with (``cell``: already derived)."""
        if cell is None:
            cell = classify(request)
        if cell not in self.posteriors:
            return self.default_model
        chars = sum(len(message.text()) for message in request.messages)
        complexity = cell.partition("/")[2]
        decision = self.decide(
            cell,
            input_tokens=math.ceil(chars / 4),
            output_tokens=request.max_tokens or DEFAULT_OUTPUT_TOKENS.get(complexity, 512),
        )
        return decision.model
