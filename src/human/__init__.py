"""human: one client for every OpenAI-compatible chat-completions API.

    import human
    with human.Client() as client:            # provider and model from ~/.human/config.json
        print(client.chat("Say hi").content)

Importing this package is cheap and touches no network: the names below are loaded on
first use (a test keeps it that way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "Client": "client",
    "AsyncClient": "client",
    "ChatStream": "client",
    "AsyncChatStream": "client",
    "Config": "config",
    "load_config": "config",
    "resolve": "config",
    "Target": "config",
    "Timeouts": "config",
    "Secret": "core.secret",
    "batch": "batching.api",
    "BatchSummary": "batching",
    "BatchProgress": "batching",
    "NOT_GIVEN": "core.wire",
    **dict.fromkeys(["run", "tool", "Tool", "RunResult", "RunStream", "AsyncRunStream", "Step", "ToolRun", "MCPServer",
                     "ToolStartEvent", "ToolResultEvent"], "agent"),
    **dict.fromkeys(
        [
            "ChatResponse", "Cost", "ToolCall", "Usage", "ContentDelta", "ReasoningDelta", "ToolCallStart",
            "ToolCallDelta", "ToolCallDone", "UsageEvent", "FinishEvent", "StreamEvent", "PartialObject",
            "ParsedObject", "ReaskEvent",
            "system", "user", "assistant", "tool_result", "text_part", "image_part",
        ],
        "types",
    ),
    **dict.fromkeys(
        [
            "HumanError", "ConfigError", "UnknownProviderError", "MissingCredentialError", "APIError",
            "APIConnectionError", "APITimeoutError", "APIStatusError", "BadRequestError",
            "ContextLengthError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
            "RateLimitError", "RedirectError", "ServerError", "TLSError", "BadResponseError", "ResponseTooLargeError",
            "CircuitOpenError", "ToolError", "ToolArgumentsError", "ToolRunError", "MCPServerError",
            "MaxTurnsError", "AllAttemptsFailedError", "ClientClosedError", "StructuredOutputError",
            "TruncatedOutputError", "OutputAttempt",
            "BatchInputError", "BatchStoppedError",
        ],
        "errors",
    ),
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'human' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"human.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers see; "X as X" marks an explicit re-export (mypy --strict)
    from .agent import AsyncRunStream as AsyncRunStream
    from .agent import MCPServer as MCPServer
    from .agent import RunResult as RunResult
    from .agent import RunStream as RunStream
    from .agent import Step as Step
    from .agent import Tool as Tool
    from .agent import ToolResultEvent as ToolResultEvent
    from .agent import ToolRun as ToolRun
    from .agent import ToolStartEvent as ToolStartEvent
    from .agent import run as run
    from .agent import tool as tool
    from .batching import BatchProgress as BatchProgress
    from .batching import BatchSummary as BatchSummary
    from .batching.api import batch as batch
    from .client import AsyncChatStream as AsyncChatStream
    from .client import AsyncClient as AsyncClient
    from .client import ChatStream as ChatStream
    from .client import Client as Client
    from .config import Config as Config
    from .config import Target as Target
    from .config import Timeouts as Timeouts
    from .config import load_config as load_config
    from .config import resolve as resolve
    from .core.secret import Secret as Secret
    from .core.wire import NOT_GIVEN as NOT_GIVEN
    from .errors import *  # noqa: F403
    from .types import *  # noqa: F403
