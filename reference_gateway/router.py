"""What ``model: "auto"`` means: Thompson sampling per tenant and cell, with a cost weight.

A request falls into a **cell**, ``kind/complexity``: the kind (``code``, ``math``,
``extraction``, ``tools``, ``chat``) from the tools it offers and keywords in its system
prompt and last user message, the complexity (``simple``, ``moderate``, ``complex``) from
its length and number of turns. The header ``x-provara-cell: kind/complexity`` overrides
both.

Every completion's cell and model are remembered (a bounded in-memory map, completion id
-> tenant, cell, model) so feedback (``POST /v1/feedback``) and judge scores land on the
right ``(tenant, cell, model)``. A score in [0, 1] is a fractional success.

**Each tenant learns from its own feedback**, starting from the rest of the gateway's as a
prior. The router keeps every tenant's samples per ``(cell, model)``, ``n_t`` scores
summing to ``S_t``, and their gateway-wide totals ``n_g``, ``S_g``. The other tenants'
evidence, ``n_o = n_g - n_t`` and ``S_o = S_g - S_t``, is scaled down to at most ``W``
pseudo-samples (``PROVARA_ROUTER_PRIOR_WEIGHT``), ``s = min(1, W / n_o)`` (0 when
``n_o = 0``), and the tenant's posterior is::

    Beta(1 + s*S_o + S_t,  1 + s*(n_o - S_o) + (n_t - S_t))

with ``s*n_o + n_t = min(n_o, W) + n_t`` **effective samples**. So a new tenant starts from
the gateway-wide mean, worth ``W`` samples; its own samples outweigh that prior once it has
more than ``W`` of them; and other tenants, however much feedback they send, move its
posterior by at most ``W`` samples' worth (their mean, never their volume). ``W = 0``:
tenants learn only from themselves. ``W`` defaults to ``min_samples``: a new tenant's
candidates are then exactly the models the rest of the gateway trusts (``min(n_o, W)``
reaches ``min_samples`` exactly when ``n_o`` does), and ``min_samples`` samples of its own
count as much as everyone else's.

The policy, per ``auto`` request of a tenant in cell ``c``:

* **Cold start.** No model has ``min_samples`` (``PROVARA_MIN_SAMPLES``) effective samples
  in ``c``: the pinned default (``PROVARA_DEFAULT_MODEL``). Pinned requests' feedback and
  judge scores count toward the tenant's cell x model, which is how a cell bootstraps.
* **Candidates.** Models with at least ``min_samples`` effective samples in ``c`` that are
  priced (unpriced models are **excluded** from auto: their cost is unknown, and treating
  it as $0 would make them win on price), plus the default, always.
* **Choice.** For each candidate ``m`` draw ``q_m`` from the tenant's posterior and pick the
  largest ``u_m = q_m - λ · E[cost_m]``, where ``λ`` is ``PROVARA_ROUTER_COST_WEIGHT``
  (quality points per USD, default 10) and ``E[cost_m]`` the request's expected USD cost
  from the pricing table: input tokens ``ceil(chars / 4)`` of the messages, output tokens
  ``max_tokens`` or a default per complexity (256 / 512 / 1024). An unpriced default is
  charged the dearest candidate's expected cost (the stated penalty: never free).

A tenant's posteriors of a cell are computed when it first needs them and kept until the
next sample lands in that cell (anyone's: the prior moves too), so an ``auto`` request
costs a lookup, plus a Beta draw and a price per candidate in a cell past its cold start.

**Failures count against a model.** Every failed attempt at a model (a 429, a 5xx, no
connection, no first token in time, a key the provider refused; not a request the upstream
refused as malformed) adds one to the tenant's failure count of that model, which halves
every ``failure_half_life`` seconds (5 minutes) and on each success. In ``auto`` a model's
count ``f`` joins its posterior as ``f`` zero-score samples, ``Beta(alpha, beta + f)``: a
model that keeps failing is drawn less often until it recovers, without touching the
feedback it earned. The counts are per tenant (a tenant's own key may be the one failing),
kept in memory by each process, and shown on ``/dashboard/router``.

The random source is injectable (``rng``, or ``PROVARA_ROUTER_SEED``), so tests are
deterministic. Samples are persisted in the ``feedback`` table and every tenant's totals
rebuilt from it at start-up (:meth:`Router.load`); samples other processes store arrive
through :meth:`Router.add_sample` like local ones.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
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
    "Samples",
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
"""Input tokens of a typical request of each complexity (for the dashboard's choices)."""

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
class Samples:
    """Quality samples of one ``(cell, model)``: ``n`` scores summing to ``total``."""

    n: int = 0
    total: float = 0.0

    @property
    def mean(self) -> float:
        """The average score (0 without samples)."""
        return self.total / self.n if self.n else 0.0

    def add(self, score: float) -> None:
        self.n += 1
        self.total += score


class Posterior(NamedTuple):
    """A tenant's posterior of one ``(cell, model)``: ``Beta(alpha, beta)`` from ``samples``
    effective samples, its own plus the prior's (see the module docstring)."""

    alpha: float
    beta: float
    samples: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


UNIFORM = Posterior(1.0, 1.0, 0.0)


class Tracked(NamedTuple):
    """What the gateway remembers about one completion, for feedback and the judge."""

    tenant_id: str
    cell: str
    model: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model's standing in a cell for a tenant: posterior, cost and the utility used."""

    model: str
    samples: float
    """Effective samples: the tenant's own plus the prior's."""
    mean: float
    priced: bool
    eligible: bool
    reason: str
    expected_cost: Decimal | None
    cost_term: float
    utility: float
    """The posterior mean (or the Thompson draw, for a real decision) minus the cost term."""
    failures: float = 0.0
    """The tenant's recent failures of the model (decayed), counted as zero scores."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a cell routes for a tenant, and why."""

    cell: str
    model: str
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())


class _View(NamedTuple):
    """A tenant's posteriors in one cell, as the policy reads them."""

    posteriors: dict[str, Posterior]
    """Every model with effective samples, and the default; sorted by name."""
    ready: tuple[tuple[str, Posterior], ...]
    """The default and the models with ``min_samples`` effective samples, sorted by name."""


@dataclass(slots=True)
class _Cell:
    """One cell's samples: gateway-wide per model, per tenant per model, and the tenants'
    views computed since the last sample."""

    totals: dict[str, Samples] = field(default_factory=dict)
    tenants: dict[str, dict[str, Samples]] = field(default_factory=dict)
    views: dict[str, _View] = field(default_factory=dict)


_NONE = Samples()


class Router:
    """Chooses the model for requests that ask for ``auto`` (see the module docstring).

    ``prior_weight`` is ``W``, the most samples' worth the other tenants' evidence counts
    for in a tenant's posterior (``None``: ``min_samples``; 0: none).
    """

    def __init__(
        self,
        *,
        default_model: str,
        min_samples: int,
        cost_weight: float = 10.0,
        prior_weight: float | None = None,
        rng: random.Random | None = None,
        pricing: Mapping[str, object] = MODEL_PRICING,
        max_tracked: int = 100_000,
        failure_half_life: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        weight = float(min_samples if prior_weight is None else prior_weight)
        if not 0 <= weight < math.inf:
            raise ValueError(f"prior_weight must be a number >= 0, got {prior_weight!r}")
        self.default_model = default_model
        self.min_samples = min_samples
        self.cost_weight = cost_weight
        self.prior_weight = weight
        self.rng = rng or random.Random()
        self.pricing = pricing
        self.max_tracked = max_tracked
        self._cells: dict[str, _Cell] = {}
        self._tracked: OrderedDict[str, Tracked] = OrderedDict()
        self._names: dict[str, str] = {}
        self.failure_half_life = failure_half_life
        self.clock = clock
        self._failures: dict[str, dict[str, tuple[float, float]]] = {}

    # -- failures --------------------------------------------------------------------------

    def _decayed(self, entry: tuple[float, float], now: float) -> float:
        count, at = entry
        return count * math.pow(0.5, (now - at) / self.failure_half_life)

    def failed(self, tenant_id: str, model: str) -> None:
        """An attempt of ``tenant_id`` at ``model`` (``provider/model``) failed."""
        models = self._failures.setdefault(tenant_id, {})
        now = self.clock()
        entry = models.get(model)
        models[self._names.setdefault(model, model)] = (
            1.0 + (0.0 if entry is None else self._decayed(entry, now)),
            now,
        )

    def succeeded(self, tenant_id: str, model: str) -> None:
        """An attempt of ``tenant_id`` at ``model`` answered: its failure count halves."""
        models = self._failures.get(tenant_id)
        if models is None:
            return
        entry = models.get(model)
        if entry is not None:
            now = self.clock()
            count = self._decayed(entry, now) / 2
            if count < 0.01:
                del models[model]
            else:
                models[model] = (count, now)

    def failures(self, tenant_id: str) -> dict[str, float]:
        """The tenant's recent failure count per model (decayed; only models with any)."""
        models = self._failures.get(tenant_id)
        if not models:
            return {}
        now = self.clock()
        return {model: self._decayed(entry, now) for model, entry in models.items()}

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

    def add_sample(self, tenant_id: str, cell: str, model: str, score: float) -> None:
        """One quality sample (``score`` in [0, 1]) of ``tenant_id``'s ``model`` in ``cell``."""
        state = self._cells.get(cell)
        if state is None:
            state = self._cells[cell] = _Cell()
        model = self._names.setdefault(model, model)
        state.totals.setdefault(model, Samples()).add(score)
        state.tenants.setdefault(tenant_id, {}).setdefault(model, Samples()).add(score)
        state.views.clear()

    def load(self, rows: Iterable[tuple[str, str, str, int, float]]) -> int:
        """Replace every sample with ``rows`` of ``(tenant_id, cell, provider/model, samples,
        sum of scores)`` (what :func:`~reference_gateway.store.feedback.feedback_totals`
        reads); returns the number of samples."""
        self._cells.clear()
        count = 0
        for tenant_id, cell, model, n, total in rows:
            state = self._cells.get(cell)
            if state is None:
                state = self._cells[cell] = _Cell()
            model = self._names.setdefault(model, model)
            for samples in (
                state.totals.setdefault(model, Samples()),
                state.tenants.setdefault(tenant_id, {}).setdefault(model, Samples()),
            ):
                samples.n += int(n)
                samples.total += float(total)
            count += int(n)
        return count

    def cells(self) -> list[str]:
        """The cells with samples (anyone's), sorted."""
        return sorted(self._cells)

    def samples(self, tenant_id: str, cell: str) -> Mapping[str, Samples]:
        """The tenant's own samples in ``cell``, per model."""
        state = self._cells.get(cell)
        return {} if state is None else state.tenants.get(tenant_id, {})

    def totals(self, cell: str) -> Mapping[str, Samples]:
        """Every tenant's samples in ``cell`` together, per model (never shown to a tenant)."""
        state = self._cells.get(cell)
        return {} if state is None else state.totals

    def posterior(self, tenant_id: str, cell: str, model: str) -> Posterior:
        """The tenant's posterior of ``model`` in ``cell``."""
        state = self._cells.get(cell)
        if state is None:
            return UNIFORM
        own = state.tenants.get(tenant_id, {}).get(model, _NONE)
        return self._posterior(state.totals.get(model, _NONE), own)

    def _posterior(self, total: Samples, own: Samples) -> Posterior:
        others = total.n - own.n
        weight = min(others, self.prior_weight)
        if weight > 0:
            # Float sums: the others' share is clamped to what n_o samples can hold.
            hits = weight * min(max(total.total - own.total, 0.0), others) / others
        else:
            weight = hits = 0.0
        return Posterior(
            1.0 + hits + own.total, 1.0 + weight - hits + own.n - own.total, weight + own.n
        )

    def _view(self, tenant_id: str, state: _Cell) -> _View:
        view = state.views.get(tenant_id)
        if view is None:
            own = state.tenants.get(tenant_id, {})
            default = self.default_model
            posteriors: dict[str, Posterior] = {}
            for model in sorted({*state.totals, default}):
                posterior = self._posterior(state.totals.get(model, _NONE), own.get(model, _NONE))
                if posterior.samples > 0 or model == default:
                    posteriors[model] = posterior
            ready = tuple(
                (model, posterior)
                for model, posterior in posteriors.items()
                if model == default or posterior.samples >= self.min_samples
            )
            view = state.views[tenant_id] = _View(posteriors, ready)
        return view

    # -- the policy ------------------------------------------------------------------------

    def expected_cost(self, model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
        """The USD cost of ``model`` (``provider/model``) for those tokens; None if unpriced."""
        provider, _, model_id = model.partition("/")
        if not model_id:
            return None
        price = lookup_price(provider, model_id, self.pricing)
        return None if price is None else price.cost(input_tokens, output_tokens)

    def decide(
        self,
        cell: str,
        *,
        tenant_id: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        sample: bool = True,
    ) -> Decision:
        """The model for one request of ``tenant_id`` in ``cell``, with every candidate's
        standing.

        ``sample`` draws from each posterior (Thompson sampling, what ``auto`` does, with
        the same draws as :meth:`choose_model`); without it the posterior means are used,
        which is the tenant's expected choice (what the dashboard shows). Token counts
        default to a typical request of the cell.
        """
        complexity = cell.partition("/")[2]
        if input_tokens is None:
            input_tokens = TYPICAL_INPUT_TOKENS.get(complexity, 1_000)
        if output_tokens is None:
            output_tokens = DEFAULT_OUTPUT_TOKENS.get(complexity, 512)
        state = self._cells.get(cell)
        if state is None:
            view = _View({self.default_model: UNIFORM}, ((self.default_model, UNIFORM),))
        else:
            view = self._view(tenant_id, state)
        costs = {m: self.expected_cost(m, input_tokens, output_tokens) for m in view.posteriors}
        failures = self.failures(tenant_id)
        ready = {m for m, _ in view.ready}
        rows: dict[str, tuple[bool, str]] = {}
        for model, posterior in view.posteriors.items():
            if model == self.default_model:
                rows[model] = (True, "the pinned default, always a candidate")
            elif costs[model] is None:
                rows[model] = (False, "unpriced: excluded from auto")
            elif model not in ready:
                rows[model] = (
                    False,
                    f"{posterior.samples:.3g} of {self.min_samples} effective samples",
                )
            else:
                rows[model] = (True, "enough samples")
        eligible = [m for m, (ok, _) in rows.items() if ok]
        cold = len(eligible) == 1
        dearest = max((c for m in eligible if (c := costs[m]) is not None), default=Decimal(0))
        candidates: list[Candidate] = []
        for model, posterior in view.posteriors.items():
            ok, reason = rows[model]
            cost = costs[model]
            cost_term = self.cost_weight * float(dearest if cost is None else cost)
            failed = failures.get(model, 0.0)
            beta = posterior.beta + failed
            if ok and sample and not cold:
                quality = self.rng.betavariate(posterior.alpha, beta)
            else:
                quality = posterior.alpha / (posterior.alpha + beta)
            candidates.append(
                Candidate(
                    model=model,
                    samples=posterior.samples,
                    mean=posterior.mean,
                    priced=cost is not None,
                    eligible=ok,
                    reason=reason,
                    expected_cost=cost,
                    cost_term=cost_term,
                    utility=quality - cost_term,
                    failures=failed,
                )
            )
        if cold:
            return Decision(
                cell,
                self.default_model,
                f"cold start: no other model has {self.min_samples} effective samples (and a "
                "price) in this cell",
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
        """The ``provider/model`` to serve ``tenant``'s ``request`` with (``cell``: already
        derived). The same choice as :meth:`decide` with ``sample``, without its report."""
        if cell is None:
            cell = classify(request)
        state = self._cells.get(cell)
        if state is None:
            return self.default_model
        ready = self._view(tenant.id, state).ready
        if len(ready) == 1:
            return self.default_model
        chars = sum(len(message.text()) for message in request.messages)
        input_tokens = math.ceil(chars / 4)
        output_tokens = request.max_tokens or DEFAULT_OUTPUT_TOKENS.get(cell.partition("/")[2], 512)
        default = self.default_model
        priced: list[tuple[str, Posterior, Decimal | None]] = []
        dearest = Decimal(0)
        for model, posterior in ready:
            cost = self.expected_cost(model, input_tokens, output_tokens)
            if cost is not None:
                priced.append((model, posterior, cost))
                dearest = max(dearest, cost)
            elif model == default:
                priced.append((model, posterior, None))
        if len(priced) == 1:
            return default
        failures = self.failures(tenant.id) if tenant.id in self._failures else {}
        best, best_utility = default, -math.inf
        for model, posterior, cost in priced:
            utility = self.rng.betavariate(
                posterior.alpha, posterior.beta + failures.get(model, 0.0)
            ) - self.cost_weight * float(dearest if cost is None else cost)
            if utility > best_utility:
                best, best_utility = model, utility
        return best
