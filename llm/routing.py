"""Turn a requested model name or alias into an ordered, explainable list of candidates.

Routing is a pure function of the catalogue, the request's needs, the caller's allow-list and two
live inputs (observed latency from the health store, open circuits from the breaker), so it is
cheap on the hot path and easy to test. Every plan says why it is ordered the way it is, in text
fit for the X-Gateway-Route-* response headers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from llm import params
from llm.catalog import AliasEntry, Catalog, ModelEntry
from llm.errors import (
    ModelNotAllowedError,
    NoRouteError,
    UnknownModelError,
    UnsupportedCapabilityError,
    UnsupportedParameterError,
)
from llm.types import ChatRequest, ProviderConfig

if TYPE_CHECKING:
    from llm.health import HealthStore

Allowed = Callable[[str], bool] | Collection[str] | None

# Weights of the balanced strategy (each factor is a rank position scaled to 0..1, lower is better).
BALANCED_WEIGHTS = {"quality": 0.5, "price": 0.3, "speed": 0.2}
# cheapest compares (3 x input + 1 x output) / 4: a typical chat reads more than it writes.
INPUT_WEIGHT, OUTPUT_WEIGHT = Decimal(3), Decimal(1)


class Candidate(NamedTuple):
    provider: ProviderConfig
    model: ModelEntry


@dataclass(frozen=True)
class RoutePlan:
    requested: str
    alias: str | None
    reason: str
    candidates: tuple[Candidate, ...]
    skipped: tuple[str, ...] = ()  # "model (refuses param)": left out for a parameter rule

    def candidate_ids(self) -> list[str]:
        return [c.model.id for c in self.candidates]

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Gateway-Route-Alias": self.alias or "",
            "X-Gateway-Route-Reason": _header_safe(self.reason),
            "X-Gateway-Candidates": ", ".join(self.candidate_ids()),
        }
        if self.skipped:
            headers["X-Gateway-Route-Skipped"] = _header_safe("; ".join(self.skipped))
        return headers


def needs_for(request: ChatRequest) -> frozenset[str]:
    """The capabilities a chat request needs from a model."""
    needs = {"chat"}
    if request.stream:
        needs.add("stream")
    if request.tools:
        needs.add("tools")
    kind = (request.response_format or {}).get("type")
    if kind == "json_object":
        needs.add("json")
    elif kind == "json_schema":
        needs.add("structured")
    if any(_has_image(m.get("content")) for m in request.messages):
        needs.add("vision")
    return frozenset(needs)


def _has_image(content: object) -> bool:
    if not isinstance(content, list):
        return False
    return any(isinstance(p, dict) and p.get("type") in ("image_url", "image") for p in content)


def resolve(
    catalog: Catalog,
    name: str,
    *,
    needs: Iterable[str] = ("chat",),
    allowed: Allowed = None,
    health: HealthStore | None = None,
    open_circuits: Collection[str] = frozenset(),
    now: datetime | None = None,
    request: ChatRequest | None = None,
) -> RoutePlan:
    """Order the candidates for name. Raises UnknownModelError, ModelNotAllowedError,
    UnsupportedCapabilityError, UnsupportedParameterError or NoRouteError (see llm.errors for
    their HTTP statuses). With a request, candidates whose parameter rules refuse one of its
    parameters are skipped; a named model that refuses one is a 400 at once."""
    need = frozenset(needs)
    is_allowed = _allow_predicate(allowed)
    when = now or datetime.now(UTC)
    if name not in catalog.models and name not in catalog.aliases:
        raise UnknownModelError(name, [n for n in catalog.names() if is_allowed(n)])
    if not is_allowed(name):
        raise ModelNotAllowedError(f"{name!r} is not allowed for this key's plan")
    skipped: list[str] = []
    refusals: list[tuple[str, str, str]] = []  # (model, param, why)

    present = params.present_params(request) if request is not None else {}
    refusals_by_model: dict[str, tuple[str, str] | None] = {}

    def refusal(model: ModelEntry) -> tuple[str, str] | None:
        if request is None:
            return None
        if model.id not in refusals_by_model:  # a named model is checked, then walked
            decision = params.decide(model.params, request, model.id, present)
            refusals_by_model[model.id] = decision.refused
        return refusals_by_model[model.id]

    def usable(model: ModelEntry, extra: frozenset[str] = frozenset()) -> bool:
        why = None
        # Capabilities first: a model that could never serve this request is "lacks", so a name
        # behind which nothing can serve it answers 400, not 503.
        if not (need | extra) <= model.capabilities:
            why = "lacks " + ",".join(sorted((need | extra) - model.capabilities))
        elif not catalog.is_configured(model.provider):
            why = f"{model.provider} not configured"
        elif not is_allowed(model.id):
            why = "not allowed"
        elif not model.has_price_at(when):
            why = "not priced yet"
        elif (refused := refusal(model)) is not None:
            refusals.append((model.id, *refused))
            why = f"refuses {refused[0]}"
        if why:
            skipped.append(f"{model.id} ({why})")
        return why is None

    if name in catalog.models:
        model = catalog.models[name]
        if not need <= model.capabilities:
            missing = ",".join(sorted(need - model.capabilities))
            raise UnsupportedCapabilityError(f"model {name!r} does not support {missing}")
        refused = refusal(model)
        if refused is not None:
            raise UnsupportedParameterError(
                f"Model {name!r} does not accept '{refused[0]}': {refused[1]}.",
                param=refused[0],
                models=[name],
            )
        chain = [model] + [catalog.models[f] for f in model.fallbacks]
        ordered = [m for m in chain if usable(m)]
        alias, reason = None, f"model {name}" + (", then its fallbacks" if model.fallbacks else "")
    else:
        entry = catalog.aliases[name]
        alias = name
        if entry.strategy is None:
            ordered = [m for m in (catalog.models[i] for i in entry.models) if usable(m)]
            reason = f"alias {name}: listed order"
        else:
            pool = [m for m in _pool(catalog, entry) if usable(m, entry.capabilities)]
            real = [m for m in pool if not m.demo]
            ordered = _rank(entry.strategy, real or pool, health, when)
            reason = f"alias {name}: {_STRATEGY_TEXT[entry.strategy]} of {len(ordered)} model(s)"
    if not ordered:
        if refusals:
            param = refusals[0][1]
            detail = "; ".join(f"{m}: {why}" for m, _p, why in refusals)
            raise UnsupportedParameterError(
                f"No model behind {name!r} accepts this request's '{param}' ({detail}).",
                param=param,
                models=[m for m, _p, _w in refusals],
            )
        if skipped and all("lacks" in s for s in skipped):
            raise UnsupportedCapabilityError(
                f"no model behind {name!r} supports {','.join(sorted(need))}"
            )
        detail = "; ".join(skipped) or "no models"
        raise NoRouteError(f"no configured model can serve {name!r}: {detail}")
    ordered, note = _skip_open(ordered, open_circuits)
    if note:
        reason += f"; {note}"
    candidates = tuple(Candidate(catalog.provider(m.provider), m) for m in ordered)
    return RoutePlan(
        requested=name,
        alias=alias,
        reason=reason,
        candidates=candidates,
        skipped=tuple(f"{model} (refuses {param})" for model, param, _why in refusals),
    )


_STRATEGY_TEXT = {
    "fastest": "lowest observed latency (speed_rank where unmeasured)",
    "cheapest": "lowest blended price",
    "best": "best quality_rank",
    "balanced": "balanced quality/price/speed score",
}


def _allow_predicate(allowed: Allowed) -> Callable[[str], bool]:
    if allowed is None:
        return lambda _name: True
    if callable(allowed):
        return allowed
    names = frozenset(allowed)
    return names.__contains__


def _pool(catalog: Catalog, entry: AliasEntry) -> list[ModelEntry]:
    return [
        m
        for m in catalog.models.values()
        if (entry.providers is None or m.provider in entry.providers)
        and (entry.only_models is None or m.id in entry.only_models)
    ]


def blended_price(model: ModelEntry, when: datetime) -> Decimal:
    row = model.price_at(when)
    return (INPUT_WEIGHT * row.input_per_mtok + OUTPUT_WEIGHT * row.output_per_mtok) / (
        INPUT_WEIGHT + OUTPUT_WEIGHT
    )


def _rank(
    strategy: str, pool: list[ModelEntry], health: HealthStore | None, when: datetime
) -> list[ModelEntry]:
    price = {m.id: blended_price(m, when) for m in pool}
    if strategy == "cheapest":
        return sorted(pool, key=lambda m: (price[m.id], m.speed_rank, m.id))
    if strategy == "best":
        return sorted(pool, key=lambda m: (m.quality_rank, price[m.id], m.id))
    if strategy == "fastest":

        def speed_key(m: ModelEntry) -> tuple:
            # Measured models first, by latency; unmeasured ones after them, by speed_rank.
            latency = health.latency_ms(m.id) if health is not None else None
            return (
                (0, latency, m.speed_rank, m.id)
                if latency is not None
                else (1, m.speed_rank, 0, m.id)
            )

        return sorted(pool, key=speed_key)
    q = _positions([m.quality_rank for m in pool])
    p = _positions([price[m.id] for m in pool])
    s = _positions([m.speed_rank for m in pool])
    w = BALANCED_WEIGHTS
    # Rounded so that equal scores tie exactly (then quality decides) despite float noise.
    score = {
        m.id: round(w["quality"] * q[i] + w["price"] * p[i] + w["speed"] * s[i], 9)
        for i, m in enumerate(pool)
    }
    return sorted(pool, key=lambda m: (score[m.id], m.quality_rank, m.id))


def _positions(values: list) -> list[float]:
    """Each value's position among the distinct values, scaled to 0..1 (ties share a position)."""
    distinct = sorted(set(values))
    span = max(len(distinct) - 1, 1)
    return [distinct.index(v) / span for v in values]


def _skip_open(ordered: list[ModelEntry], open_circuits: Collection[str]) -> tuple[list, str]:
    if not open_circuits:
        return ordered, ""
    closed = [m for m in ordered if m.provider not in open_circuits]
    skipped = sorted({m.provider for m in ordered if m.provider in open_circuits})
    if not skipped:
        return ordered, ""
    if closed:
        return closed, "circuit open: skipped " + ",".join(skipped)
    # Every circuit is open: try the best candidate anyway rather than fail without trying.
    return ordered[:1], "all circuits open: trying the first anyway"


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
