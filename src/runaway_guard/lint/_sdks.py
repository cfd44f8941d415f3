"""What the linter knows about paid SDKs: their clients, paid methods and own retries.

A call is paid when it goes through a client (or a module used as one) and its method
is one of the SDK's paid verbs, unless the resource just before the verb is a free one
(``client.files.create`` uploads a file; ``client.chat.completions.create`` bills).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DROPPED_SEGMENTS", "SDKS", "Sdk", "sdk_for"]

# Path segments that change how a response is returned, not what is bought.
DROPPED_SEGMENTS = frozenset({"with_raw_response", "with_streaming_response", "beta", "aio"})

_OPENAI_VERBS = frozenset(
    {
        "create",
        "parse",
        "stream",
        "generate",
        "edit",
        "create_variation",
        "create_and_poll",
        "create_and_stream",
        "create_and_run",
        "create_and_run_poll",
        "create_and_run_stream",
        "submit_tool_outputs",
        "submit_tool_outputs_and_poll",
        "submit_tool_outputs_stream",
        "remix",
    }
)
_OPENAI_FREE = frozenset(
    {
        "files",
        "models",
        "assistants",
        "threads",
        "messages",
        "vector_stores",
        "uploads",
        "parts",
        "containers",
        "conversations",
        "items",
        "evals",
        "webhooks",
        "moderations",
        "checkpoints",
        "permissions",
        "sessions",
        "client_secrets",
    }
)
_OPENAI_LLM = frozenset(
    {
        ("completions", "create"),
        ("completions", "parse"),
        ("completions", "stream"),
        ("responses", "create"),
        ("responses", "parse"),
        ("responses", "stream"),
    }
)
_TOKEN_KWARGS = frozenset(
    {"max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample"}
)


@dataclass(frozen=True, slots=True)
class Sdk:
    """One paid SDK.

    Attributes:
        name: the name findings use (``openai``).
        module: the import path (``openai``, ``google.genai``).
        clients: constructor names (the last segment) whose instances make paid calls.
        verbs: method names that make a paid call.
        free: resources (the segment before the verb) whose ``create`` costs nothing.
        module_client: module-level calls work like a client's (``replicate.run``).
        llm: (resource, verb) pairs that generate text; ``""`` for a method on the client.
        retries: the client's own retries by default, or None when it has none (or we
            do not know).
        retries_kwarg: the constructor (and ``with_options``) keyword that sets them.
        retry_config_kwargs: keywords that configure retries in a way the linter cannot
            read; their presence makes the retry count unknown.
        bound: how an output-token bound is passed: ``kwargs``, ``genai`` (in
            ``config=``), or ``bedrock`` (``inferenceConfig={"maxTokens": N}``).
    """

    name: str
    module: str
    clients: frozenset[str]
    verbs: frozenset[str]
    free: frozenset[str] = frozenset()
    module_client: bool = False
    llm: frozenset[tuple[str, str]] = frozenset()
    retries: int | None = None
    retries_kwarg: str | None = None
    retry_config_kwargs: frozenset[str] = field(default_factory=frozenset)
    bound: str = "kwargs"

    def is_paid(self, path: tuple[str, ...]) -> bool:
        """Whether calling ``client.<path>`` is a paid call."""
        path = normalise(path)
        if not path or path[-1] not in self.verbs:
            return False
        # Creating a file, an assistant or a thread is free; creating a completion is not.
        return path[-1] != "create" or len(path) < 2 or path[-2] not in self.free

    def is_llm(self, path: tuple[str, ...]) -> bool:
        """Whether ``client.<path>`` generates text (and so needs an output bound)."""
        path = normalise(path)
        if not path:
            return False
        resource = path[-2] if len(path) > 1 else ""
        return (resource, path[-1]) in self.llm


def normalise(path: tuple[str, ...]) -> tuple[str, ...]:
    """The path without the segments that do not change what is bought."""
    if DROPPED_SEGMENTS.isdisjoint(path):
        return path
    return tuple(part for part in path if part not in DROPPED_SEGMENTS)


def _openai_like(name: str, module: str, clients: set[str]) -> Sdk:
    return Sdk(
        name,
        module,
        frozenset(clients),
        _OPENAI_VERBS,
        _OPENAI_FREE,
        llm=_OPENAI_LLM,
        retries=2,
        retries_kwarg="max_retries",
    )


SDKS: tuple[Sdk, ...] = (
    Sdk(
        "openai",
        "openai",
        frozenset({"OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"}),
        _OPENAI_VERBS,
        _OPENAI_FREE,
        module_client=True,
        llm=_OPENAI_LLM | {("ChatCompletion", "create"), ("Completion", "create")},
        retries=2,
        retries_kwarg="max_retries",
    ),
    Sdk(
        "anthropic",
        "anthropic",
        frozenset(
            {
                "Anthropic",
                "AsyncAnthropic",
                "AnthropicBedrock",
                "AsyncAnthropicBedrock",
                "AnthropicVertex",
                "AsyncAnthropicVertex",
            }
        ),
        frozenset({"create", "stream"}),
        frozenset({"models", "files", "skills", "versions"}),
        llm=frozenset({("messages", "create"), ("messages", "stream"), ("completions", "create")}),
        retries=2,
        retries_kwarg="max_retries",
    ),
    _openai_like("groq", "groq", {"Groq", "AsyncGroq"}),
    _openai_like("together", "together", {"Together", "AsyncTogether"}),
    Sdk(
        "fal_client",
        "fal_client",
        frozenset({"SyncClient", "AsyncClient"}),
        frozenset(
            {
                "run",
                "run_async",
                "subscribe",
                "subscribe_async",
                "submit",
                "submit_async",
                "stream",
                "stream_async",
            }
        ),
        module_client=True,
    ),
    Sdk(
        "replicate",
        "replicate",
        frozenset({"Client"}),
        frozenset({"run", "async_run", "stream", "async_stream", "create", "async_create"}),
        frozenset({"models", "files", "hardware", "collections", "webhooks", "deployments"}),
        module_client=True,
    ),
    Sdk(
        "elevenlabs",
        "elevenlabs",
        frozenset({"ElevenLabs", "AsyncElevenLabs"}),
        frozenset(
            {
                "convert",
                "stream",
                "generate",
                "convert_with_timestamps",
                "stream_with_timestamps",
                "compose",
                "compose_detailed",
                "dub",
                "isolate",
            }
        ),
        frozenset({"voices", "models", "user", "history", "samples", "settings"}),
        retries=2,
        retry_config_kwargs=frozenset({"request_options"}),
    ),
    Sdk(
        "cohere",
        "cohere",
        frozenset({"Client", "ClientV2", "AsyncClient", "AsyncClientV2"}),
        frozenset(
            {
                "chat",
                "chat_stream",
                "generate",
                "generate_stream",
                "embed",
                "rerank",
                "classify",
                "summarize",
                "create",
            }
        ),
        frozenset({"models", "datasets", "connectors", "finetuning", "tokenize"}),
        llm=frozenset(
            {("", "chat"), ("", "chat_stream"), ("", "generate"), ("", "generate_stream")}
        ),
        retries=2,
        retries_kwarg="max_retries",
        retry_config_kwargs=frozenset({"request_options"}),
    ),
    Sdk(
        "mistralai",
        "mistralai",
        frozenset({"Mistral"}),
        frozenset(
            {
                "complete",
                "complete_async",
                "stream",
                "stream_async",
                "parse",
                "parse_async",
                "create",
                "create_async",
                "process",
                "process_async",
            }
        ),
        frozenset({"models", "files", "libraries", "documents"}),
        llm=frozenset(
            {
                (resource, verb)
                for resource in ("chat", "fim", "agents")
                for verb in (
                    "complete",
                    "complete_async",
                    "stream",
                    "stream_async",
                    "parse",
                    "parse_async",
                )
            }
        ),
    ),
    Sdk(
        "google-genai",
        "google.genai",
        frozenset({"Client"}),
        frozenset(
            {
                "generate_content",
                "generate_content_stream",
                "generate_images",
                "generate_videos",
                "embed_content",
                "edit_image",
                "upscale_image",
                "send_message",
                "send_message_stream",
            }
        ),
        llm=frozenset({("models", "generate_content"), ("models", "generate_content_stream")}),
        retries=4,
        retry_config_kwargs=frozenset({"http_options"}),
        bound="genai",
    ),
    Sdk(
        "google-generativeai",
        "google.generativeai",
        frozenset({"GenerativeModel"}),
        frozenset(
            {"generate_content", "generate_content_async", "send_message", "send_message_async"}
        ),
        llm=frozenset({("", "generate_content"), ("", "generate_content_async")}),
        bound="genai",
    ),
    Sdk(
        "litellm",
        "litellm",
        frozenset({"Router"}),
        frozenset(
            {
                "completion",
                "acompletion",
                "text_completion",
                "atext_completion",
                "embedding",
                "aembedding",
                "image_generation",
                "aimage_generation",
                "transcription",
                "atranscription",
                "speech",
                "aspeech",
                "responses",
                "aresponses",
                "batch_completion",
                "rerank",
                "arerank",
            }
        ),
        module_client=True,
        llm=frozenset(
            {
                ("", verb)
                for verb in (
                    "completion",
                    "acompletion",
                    "text_completion",
                    "atext_completion",
                    "responses",
                    "aresponses",
                    "batch_completion",
                )
            }
        ),
    ),
    Sdk(
        "bedrock-runtime",
        "boto3",
        frozenset(),
        frozenset(
            {
                "invoke_model",
                "invoke_model_with_response_stream",
                "converse",
                "converse_stream",
                "start_async_invoke",
                "invoke_agent",
                "retrieve_and_generate",
            }
        ),
        llm=frozenset({("", "converse"), ("", "converse_stream")}),
        retries=4,  # botocore's legacy retry mode: 5 attempts
        retry_config_kwargs=frozenset({"config"}),
        bound="bedrock",
    ),
)

BEDROCK = SDKS[-1]
BEDROCK_SERVICES = frozenset({"bedrock-runtime", "bedrock-agent-runtime"})
TOKEN_KWARGS = _TOKEN_KWARGS

_BY_MODULE = {sdk.module: sdk for sdk in SDKS if sdk is not BEDROCK}


def sdk_for(qualname: str) -> tuple[Sdk, tuple[str, ...]] | None:
    """The SDK a dotted import path belongs to, and the path below the SDK's module."""
    parts = qualname.split(".")
    for size in (1, 2):
        sdk = _BY_MODULE.get(".".join(parts[:size]))
        if sdk is not None:
            return sdk, tuple(parts[size:])
    return None


def module_needles() -> tuple[str, ...]:
    """Substrings at least one of which a file mentions if it can call a paid SDK."""
    return (
        "openai",
        "anthropic",
        "fal_client",
        "replicate",
        "elevenlabs",
        "together",
        "groq",
        "cohere",
        "mistralai",
        "genai",
        "generativeai",
        "litellm",
        "boto3",
    )
