"""What every client sends and what the target answers: one place for both sides.

Imported by the orchestrator (`run.py`), by the measuring workers (`workers.py`) and by
the cold-start scripts (`cold.py`). It imports nothing at module level but `os` (already
loaded by every interpreter), so that the cold-start baseline pays for it exactly as the
clients do.
"""

import os

HOST = "127.0.0.1"
# BENCH_PORT: a second checkout's target can run beside the first (smoke runs of a branch)
PORT = int(os.environ.get("BENCH_PORT", "18480"))
ORIGIN = f"http://{HOST}:{PORT}"
# base URLs, OpenAI style (the client appends /chat/completions)
BASE = f"{ORIGIN}/v1"
BASE_STREAM = f"{ORIGIN}/stream/v1"
BASE_STREAM5000 = f"{ORIGIN}/stream5000/v1"
API_KEY = "sk-bench"
MODEL = "gpt-4o"

MESSAGES = [
    {"role": "system", "content": "You are a concise assistant. Answer in one short paragraph."},
    {"role": "user", "content": "What should I know before benchmarking an HTTP client?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]
OPTIONS = {"temperature": 0.2, "max_tokens": 128}


def request_body(stream=False):
    """The JSON body the raw clients send (the libraries build the same from their API)."""
    body = {"model": MODEL, "messages": MESSAGES, **OPTIONS, "tools": TOOLS}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

# ---- the answers ----------------------------------------------------------------------

COMPLETION_TEXT = (
    "Measure on a quiet machine, pin the client and the server to different cores, warm up "
    "before you count, and check every answer you get."
)


def stream_pieces(n_chunks):
    """Content deltas of an n-chunk stream: n - 3 deltas (role, finish and usage chunks aside)."""
    return [("Token" if i == 0 else " token") + str(i) for i in range(n_chunks - 3)]


def expected_stream_text(n_chunks):
    return "".join(stream_pieces(n_chunks))


_ID = "chatcmpl-Bench0123456789abcdefABCDEF"
_CREATED = 1764400000
_FP = "fp_b1e0c0ffee"
_MODEL_SERVED = "gpt-4o-2024-08-06"


def _usage(completion_tokens):
    return {
        "prompt_tokens": 81,
        "completion_tokens": completion_tokens,
        "total_tokens": 81 + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body():
    """The fixed non-streamed answer (about 700 bytes)."""
    import json

    return json.dumps(
        {
            "id": _ID,
            "object": "chat.completion",
            "created": _CREATED,
            "model": _MODEL_SERVED,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": COMPLETION_TEXT, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(33),
            "service_tier": "default",
            "system_fingerprint": _FP,
        },
        separators=(",", ":"),
    )


def stream_body(n_chunks):
    """The fixed SSE answer: a role chunk, n-3 content deltas, a finish chunk, a usage chunk, [DONE]."""
    import json

    def chunk(choices, usage=None):
        return {
            "id": _ID,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": _MODEL_SERVED,
            "service_tier": "default",
            "system_fingerprint": _FP,
            "choices": choices,
            "usage": usage,
        }

    def choice(delta, finish=None):
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    pieces = stream_pieces(n_chunks)
    events = [chunk([choice({"role": "assistant", "content": "", "refusal": None})])]
    events += [chunk([choice({"content": p})]) for p in pieces]
    events.append(chunk([choice({}, "stop")]))
    events.append(chunk([], _usage(len(pieces))))
    assert len(events) == n_chunks
    out = "".join("data: " + json.dumps(e, separators=(",", ":")) + "\n\n" for e in events)
    return out + "data: [DONE]\n\n"
