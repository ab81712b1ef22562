"""Plain values the llm core takes and returns.

The core (providers, catalogue, routing) imports nothing else of ours: callers hand it these
dataclasses and get these back, so it can be tested with fakes alone.
Messages, tools and response formats use the OpenAI chat-completions shapes as the lingua franca;
each dialect adapter translates them to and from its provider's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class ProviderConfig:
    """One upstream provider, as configured: data from models_config.yaml plus the environment."""

    id: str  # "openai", "anthropic", "groq", ... or "demo"
    name: str  # human label, e.g. "Groq"
    dialect: str  # "openai", "anthropic", "gemini", "cohere", "ollama", "demo"
    base_url: str  # as the provider's SDK spells it, e.g. https://api.openai.com/v1
    api_key: str | None = None
    # Extra static headers (e.g. OpenRouter's HTTP-Referer/X-Title).
    headers: dict[str, str] = field(default_factory=dict)
    # Free-form per-provider quirks the dialect understands, e.g. {"reasoning_content": True}.
    quirks: dict[str, Any] = field(default_factory=dict)
    requires_key: bool = True

    @property
    def is_configured(self) -> bool:
        return bool(self.api_key) or not self.requires_key


@dataclass
class ChatRequest:
    """A normalised chat request for one upstream model."""

    model: str  # the upstream model id, e.g. "claude-sonnet-4-5"
    messages: list[dict[str, Any]]  # OpenAI chat messages
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI tool definitions
    tool_choice: Any = None  # "auto" | "none" | "required" | {"type": "function", ...}
    response_format: dict[str, Any] | None = None  # OpenAI response_format
    stream: bool = False
    user: str | None = None
    seed: int | None = None
    # Parameters passed through untouched to OpenAI-dialect providers.
    extra: dict[str, Any] = field(default_factory=dict)
    # Set per candidate from its parameter rules (llm.params): names the provider uses instead of
    # OpenAI's, and whether to ask for usage on streams (False where usage comes unasked).
    wire_names: dict[str, str] = field(default_factory=dict)
    stream_usage: bool = True


TOKEN_CLASSES = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "tool_use_prompt_tokens",
)


@dataclass(frozen=True)
class Usage:
    """Token counts by class, as the provider reported them (or as we estimated them).

    input_tokens is the whole prompt: cache reads and cache writes are parts of it. output_tokens
    is everything generated: reasoning_tokens is the part of it the model spent thinking.
    tool_use_prompt_tokens (Gemini's toolUsePromptTokenCount) come on top of the prompt.
    billed_*_units are what the provider says it bills (Cohere's billed_units) when it differs
    from the tokens processed; None when it does not say.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # cache reads, part of input_tokens
    cache_write_5m_tokens: int = 0  # written to a 5-minute prompt cache, part of input_tokens
    cache_write_1h_tokens: int = 0  # written to a 1-hour prompt cache, part of input_tokens
    reasoning_tokens: int = 0  # part of output_tokens
    tool_use_prompt_tokens: int = 0  # on top of input_tokens
    billed_input_units: int | None = None
    billed_output_units: int | None = None
    service_tier: str = ""  # the tier the provider says it served ("priority", "flex", ...)
    # Which numbers we estimated because the provider had not reported them: any of
    # {"input", "output"}. estimated=True alone means both.
    estimated_parts: frozenset[str] = frozenset()
    estimated: bool = False

    def __post_init__(self) -> None:
        if self.estimated and not self.estimated_parts:
            object.__setattr__(self, "estimated_parts", frozenset({"input", "output"}))
        elif self.estimated_parts and not self.estimated:
            object.__setattr__(self, "estimated", True)

    @property
    def prompt_tokens(self) -> int:
        """Every token the model read: the prompt plus tool-use prompt tokens."""
        return self.input_tokens + self.tool_use_prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def input_estimated(self) -> bool:
        return "input" in self.estimated_parts

    @property
    def output_estimated(self) -> bool:
        return "output" in self.estimated_parts


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI returns it


@dataclass
class ChatResult:
    text: str
    finish_reason: str  # OpenAI vocabulary: stop, length, tool_calls, content_filter
    usage: Usage
    provider: str  # ProviderConfig.id
    model: str  # the upstream model that answered
    tool_calls: list[ToolCall] = field(default_factory=list)
    latency_ms: float = 0.0
    ttft_ms: float | None = None  # streams only
    reasoning: str | None = None  # DeepSeek reasoning_content and the like
    citations: list[str] | None = None  # Perplexity
    logprobs: Any = None  # the choice's logprobs object, as OpenAI-dialect providers return it


class StreamEventType(StrEnum):
    DELTA = "delta"  # text
    TOOL_CALL = "tool_call"  # a tool-call fragment (index, id, name, arguments piece)
    REASONING = "reasoning"
    USAGE = "usage"
    DONE = "done"  # finish_reason set; always the last event of a clean stream
    ERROR = "error"  # the stream broke; usage so far is still reported before it


@dataclass
class StreamEvent:
    type: StreamEventType
    text: str = ""
    tool_call_index: int | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: ProviderError | None = None
    citations: list[str] | None = None
    model: str | None = None  # the upstream model that answered, on USAGE/DONE when known
    logprobs: Any = None  # on DELTA events, when the provider streams logprobs


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    usage: Usage
    provider: str
    model: str


class ErrorKind(StrEnum):
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"  # 5xx, 529, "overloaded"
    TIMEOUT = "timeout"
    CONNECTION = "connection"


RETRYABLE_KINDS = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT, ErrorKind.CONNECTION}
)


class ProviderError(Exception):
    """An upstream failure, classified. Retryable kinds trigger failover."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __repr__(self) -> str:
        return f"ProviderError({self.kind}, {self.provider!r}, status={self.status})"
