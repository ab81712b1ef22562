"""The twelve providers as the gateway configures them, with their real base URLs."""

from __future__ import annotations

from llm.types import ProviderConfig
from tests.llm.fakes import Case


def _openai_like(pid: str, name: str, base: str, model: str, **extra: object) -> Case:
    key = f"sk-test-{pid}"
    provider = ProviderConfig(
        id=pid, name=name, dialect="openai", base_url=base, api_key=key, **extra
    )  # type: ignore[arg-type]
    url = base.rstrip("/") + "/chat/completions"
    return Case(provider, model, url, url, ("authorization", f"Bearer {key}"))


OPENROUTER_HEADERS = {"HTTP-Referer": "https://gateway.example", "X-Title": "LLM Gateway"}

CASES = [
    _openai_like("openai", "OpenAI", "https://api.openai.com/v1", "gpt-4o-mini"),
    _openai_like("groq", "Groq", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile"),
    _openai_like(
        "together",
        "Together AI",
        "https://api.together.xyz/v1",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    ),
    _openai_like(
        "mistral",
        "Mistral",
        "https://api.mistral.ai/v1",
        "mistral-small-latest",
        quirks={"stream_usage": False},
    ),
    _openai_like(
        "huggingface",
        "Hugging Face",
        "https://router.huggingface.co/v1",
        "meta-llama/Llama-3.1-8B-Instruct",
    ),
    _openai_like(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        "anthropic/claude-3.5-haiku",
        headers=OPENROUTER_HEADERS,
    ),
    Case(
        ProviderConfig(
            id="perplexity",
            name="Perplexity",
            dialect="perplexity",
            base_url="https://api.perplexity.ai",
            api_key="pplx-test-key",
        ),
        "perplexity/sonar",
        "https://api.perplexity.ai/v1/agent",
        "https://api.perplexity.ai/v1/agent",
        ("authorization", "Bearer pplx-test-key"),
    ),
    _openai_like("deepseek", "DeepSeek", "https://api.deepseek.com", "deepseek-chat"),
    Case(
        ProviderConfig(
            id="anthropic",
            name="Anthropic",
            dialect="anthropic",
            base_url="https://api.anthropic.com",
            api_key="sk-ant-test",
        ),
        "claude-sonnet-4-5",
        "https://api.anthropic.com/v1/messages",
        "https://api.anthropic.com/v1/messages",
        ("x-api-key", "sk-ant-test"),
    ),
    Case(
        ProviderConfig(
            id="gemini",
            name="Google Gemini",
            dialect="gemini",
            base_url="https://generativelanguage.googleapis.com",
            api_key="AIza-test-key",
        ),
        "gemini-2.5-flash",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse",
        ("x-goog-api-key", "AIza-test-key"),
    ),
    Case(
        ProviderConfig(
            id="cohere",
            name="Cohere",
            dialect="cohere",
            base_url="https://api.cohere.com",
            api_key="co-test-key",
        ),
        "command-a-03-2025",
        "https://api.cohere.com/v2/chat",
        "https://api.cohere.com/v2/chat",
        ("authorization", "Bearer co-test-key"),
    ),
    Case(
        ProviderConfig(
            id="ollama",
            name="Ollama",
            dialect="ollama",
            base_url="http://localhost:11434",
            requires_key=False,
        ),
        "llama3.2",
        "http://localhost:11434/api/chat",
        "http://localhost:11434/api/chat",
        None,
    ),
]
BY_ID = {case.id: case for case in CASES}
# Sonar over chat completions, as Perplexity served it until 2026-09-27: the OpenAI dialect still
# reads citations and search_results whenever a provider sends them.
SONAR_CHAT_COMPLETIONS = _openai_like(
    "perplexity",
    "Perplexity",
    "https://api.perplexity.ai",
    "sonar",
    quirks={"list_models": False},
)
KEYED_CASES = [case for case in CASES if case.auth is not None]
