"""CPU the agent loop adds per turn, beyond the chat call itself (wave2.md F.1 (A): at most
50 µs per turn).

    .venv/bin/python bench/agent_overhead.py            # prints µs of CPU per turn

The client is a stand-in whose `chat` returns a prepared answer at once, so what is timed
is only the loop: the plan's decisions, the driver, checking and converting the
arguments, calling the tool, turning its result into a message, and the final result.
Each run is two turns: the model calls one tool, then answers. Median of 7 rounds.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from human.agent.drive import RunStream  # noqa: E402
from human.types import ChatResponse, ToolCall, Usage  # noqa: E402


def get_weather(city: str, unit: str = "c") -> str:
    """Weather in a city."""
    return f"{city} 21 {unit}"


class _Target:
    provider, base_url, model, native_tools = "bench", "http://127.0.0.1/v1", "m", None


class StandIn:
    """Just enough of `human.Client` for the loop: an answer without any I/O."""

    _profiles = False

    def __init__(self) -> None:
        usage = Usage(10, 5, 15)
        self.answers = [ChatResponse(None, (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),), usage),
                        ChatResponse("It is 21 degrees.", usage=usage)]
        self.turn = 0

    def target(self, provider: Any = None, model: Any = None) -> _Target:
        return _Target()

    def chat(self, messages: Any, **options: Any) -> ChatResponse:
        answer = self.answers[self.turn % 2]
        self.turn += 1
        return answer


def one_round(runs: int) -> float:
    client = StandIn()
    started = time.process_time()
    for _ in range(runs):
        RunStream(client, "Weather in Oslo?", tools=[get_weather], stream=False).until_done()
    return (time.process_time() - started) / (runs * 2) * 1e6


def main() -> None:
    one_round(200)  # warm up: schemas compiled and cached, imports done
    rounds = [one_round(2000) for _ in range(7)]
    print(f"agent loop overhead: {statistics.median(rounds):.1f} µs CPU per turn "
          f"(median of 7 rounds of 2,000 two-turn runs; min {min(rounds):.1f}, max {max(rounds):.1f})")


if __name__ == "__main__":
    main()
