"""The executor the public API calls: walk a RoutePlan's candidates until one answers.

- Retryable upstream errors (429, 5xx/overloaded, timeouts, refused connections) move on: first a
  bounded number of retries on the same candidate with jittered exponential backoff (a provider's
  Retry-After is honoured; one longer than max_backoff skips straight to the next candidate),
  then the next candidate; the total number of attempts is bounded too.
- Non-retryable errors (400, 401, 404) raise UpstreamRejectedError at once: another provider would
  refuse the same request, or our configuration is wrong, and retrying would only cost money.
- The whole call runs inside one deadline (seconds); when it passes, GatewayTimeoutError names the
  provider that was being waited on. For streams the deadline covers reaching the first event.
- Every attempt is recorded in RouteInfo, the health store and the circuit breaker.
- Each attempt chooses its price row once, when it is dispatched; the attempt that serves turns
  its reported usage into a Charge (llm/charges.py: bounded to what the request could produce,
  priced once). Streamed and non-streamed calls alike.
- A non-streamed attempt that is still running when the deadline passes (or the caller goes
  away) is not abandoned: RouteInfo.pending keeps it, so the caller can wait a little longer for
  the usage the provider will bill.

The walk itself is llm/attempts.py, the waits and timeouts llm/retry_policy.py, the streamed call
llm/chat_stream.py and the record of it all llm/route_info.py.
"""

from __future__ import annotations

from llm.attempts import prompt_estimate, upstream_request, walk
from llm.charges import Charge, UsageBound, charge_for
from llm.chat_stream import ChatStream
from llm.providers import get_dialect
from llm.retry_policy import DEFAULT_POLICY, RetryPolicy, first_byte
from llm.route_info import InFlight, RouteInfo
from llm.routing import Candidate, RoutePlan
from llm.runtime import Runtime, get_runtime
from llm.tokens import estimate_inputs_usage
from llm.types import ChatRequest, ChatResult, EmbeddingResult


async def complete(
    plan: RoutePlan,
    request: ChatRequest,
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    route: RouteInfo | None = None,
) -> tuple[ChatResult, RouteInfo]:
    """One chat completion with failover; deadline is the whole call's budget in seconds.
    Pass route to watch the attempts as they happen (it is filled in and returned)."""
    rt = runtime or get_runtime()
    info = route or RouteInfo.for_plan(plan)

    async def call(c: Candidate) -> tuple[ChatResult, Charge]:
        price = c.model.price_at(rt.utcnow())
        sent = upstream_request(c, request, info, stream=False)
        bound = UsageBound.for_chat(c.model, sent)
        info.in_flight = InFlight(c.model, price, bound, prompt_estimate(sent), sent)
        answer = get_dialect(c.provider.dialect).chat(rt.client(), c.provider, sent)
        result = await first_byte(answer, c, policy.first_byte_timeout)
        return result, charge_for(c.model, price, result.usage, bound, sent)

    (result, charge), _ = await walk(
        plan, info, call, deadline=deadline, rt=rt, policy=policy, keep_late=True
    )
    info.charge = charge
    return result, info


async def embed(
    plan: RoutePlan,
    inputs: list[str],
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    route: RouteInfo | None = None,
) -> tuple[EmbeddingResult, RouteInfo]:
    """Embeddings with the same failover; the charge is on RouteInfo.charge."""
    rt = runtime or get_runtime()
    info = route or RouteInfo.for_plan(plan)

    async def call(c: Candidate) -> tuple[EmbeddingResult, Charge]:
        price = c.model.price_at(rt.utcnow())
        dialect = get_dialect(c.provider.dialect)
        bound = UsageBound.for_inputs(c.model, inputs)
        info.in_flight = InFlight(c.model, price, bound, estimate_inputs_usage(inputs))
        result = await dialect.embed(rt.client(), c.provider, c.model.upstream, inputs)
        return result, charge_for(c.model, price, result.usage, bound)

    (result, charge), _ = await walk(
        plan, info, call, deadline=deadline, rt=rt, policy=policy, keep_late=True
    )
    info.charge = charge
    return result, info


def stream(
    plan: RoutePlan,
    request: ChatRequest,
    *,
    deadline: float,
    runtime: Runtime | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> ChatStream:
    return ChatStream(plan, request, deadline=deadline, runtime=runtime, policy=policy)
