"""Token counts estimated from a request body, without a tokenizer. Pure and cheap: one
UTF-8 encode per text, no vocabulary file, nothing imported.

Who uses it: the batch runner (the reservation against a `--tpm` limit, the token and cost
figures of `--dry-run`) and the gateway (its per-key TPM reservations). Both reserve the
estimate first and refund the difference once the server reports real usage
(`core/limiter.py`), so the estimate needs to be close on average, not exact.

    estimate = estimate_request({"messages": [...], "max_tokens": 256})
    estimate.prompt        # about how many tokens the server will count as input
    estimate.completion    # max_tokens when the body sets it (an upper bound), else None
    estimate.reserve(200)  # prompt + (max_tokens, else the guess given): what to reserve

How text is counted: about 4 characters a token for English-like text, the rule of thumb
OpenAI gives ("What are tokens and how to count them", help.openai.com), and about one
token for each character outside ASCII (CJK scripts take roughly 1 to 1.5 tokens a character
in cl100k/o200k), approximated from the UTF-8 length so no per-character loop is needed:

    tokens ≈ characters / 4 + (UTF-8 bytes - characters) / 2

Message framing follows the OpenAI cookbook "How to count tokens with tiktoken": 3 tokens
per message, 1 for a `name`, and 3 that prime every reply. An image is counted at the
"high detail, 1024×1024" figure of OpenAI's vision pricing (4 tiles × 170 + 85 = 765),
85 when the part asks for `detail: low`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenEstimate", "estimate_messages", "estimate_request", "estimate_text"]

PER_MESSAGE = 3
PER_NAME = 1
PER_REPLY = 3
IMAGE = 765
IMAGE_LOW = 85


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """`prompt`: estimated input tokens. `completion`: the body's own output limit
    (`max_tokens` or `max_completion_tokens`), an upper bound, or None when it sets none."""

    prompt: int
    completion: int | None = None

    def reserve(self, completion_guess: int = 0) -> int:
        """What to reserve against a tokens-per-minute limit: the prompt plus the body's
        output limit, else `completion_guess` (the caller's running average, say)."""
        return self.prompt + (self.completion if self.completion is not None else completion_guess)


def estimate_text(text: str) -> int:
    """Estimated tokens of one piece of text (0 for an empty string)."""
    if not text:
        return 0
    characters = len(text)
    if text.isascii():
        return (characters + 3) // 4
    extra = len(text.encode("utf-8", "surrogatepass")) - characters
    return (2 * characters + 4 * extra + 7) // 8  # characters/4 + extra/2, rounded up


def estimate_messages(messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
    """Estimated prompt tokens of a list of chat messages (and the tool definitions sent
    with them). Lenient: parts it does not know count as their JSON text."""
    total = PER_REPLY
    for message in messages:
        total += PER_MESSAGE
        if not isinstance(message, Mapping):
            continue
        total += _content(message.get("content"))
        if message.get("name"):
            total += PER_NAME + estimate_text(str(message["name"]))
        calls = message.get("tool_calls")
        if calls:
            total += estimate_text(json.dumps(calls, ensure_ascii=False))
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str):
            total += estimate_text(reasoning)
    if tools:
        total += estimate_text(json.dumps(tools, ensure_ascii=False))
    return total


def estimate_request(body: Mapping[str, Any]) -> TokenEstimate:
    """The estimate for one chat-completions request body (`messages`, `tools`,
    `max_tokens` / `max_completion_tokens`)."""
    messages = body.get("messages")
    tools = body.get("tools")
    prompt = estimate_messages(
        messages if isinstance(messages, Sequence) and not isinstance(messages, str) else [],
        tools if isinstance(tools, Sequence) and not isinstance(tools, str) else None,
    )
    if isinstance(messages, str):
        prompt += PER_MESSAGE + estimate_text(messages)
    limit = body.get("max_tokens", body.get("max_completion_tokens"))
    completion = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else None
    return TokenEstimate(prompt, completion)


def _content(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text(content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += estimate_text(part)
            elif not isinstance(part, Mapping):
                continue
            elif part.get("type") == "text" or "text" in part:
                total += estimate_text(str(part.get("text", "")))
            elif part.get("type") == "image_url" or "image_url" in part:
                image = part.get("image_url")
                low = isinstance(image, Mapping) and image.get("detail") == "low"
                total += IMAGE_LOW if low else IMAGE
            else:
                total += estimate_text(json.dumps(part, ensure_ascii=False))
        return total
    return estimate_text(json.dumps(content, ensure_ascii=False))
