"""`GET /metrics`: the gateway's counters in Prometheus' text format (version 0.0.4),
written by hand (a dozen series do not need prometheus-client, research wave2.md C.3).

    human_gateway_requests_total{model,status,stream}   answers by route id, status and kind
    human_gateway_errors_total{kind}                    refused (auth, limit, budget, ...) and upstream failures
    human_gateway_in_flight                             requests being served now: queueing shows here first
    human_gateway_upstream_seconds                      histogram: upstream time (to the first output for streams)
    human_gateway_overhead_seconds{quantile}            summary over the last 4,096 requests: time spent in
                                                        the gateway itself (TensorZero's overhead metric,
                                                        LiteLLM's /health/backlog for in-flight)
    human_gateway_tokens_total{model,kind}              prompt and completion tokens metered

Recording costs a few dict updates and one list store per request; sorting for the
quantiles happens when the metrics are read.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_WINDOW = 4096
_QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    def __init__(self) -> None:
        self.in_flight = 0
        self.requests: defaultdict[tuple[str, int, bool], int] = defaultdict(int)
        self.errors: defaultdict[str, int] = defaultdict(int)
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._upstream = [0] * (len(_BUCKETS) + 1)
        self._upstream_sum = 0.0
        self._upstream_count = 0
        self._overhead = [0.0] * _WINDOW
        self._overhead_next = 0
        self._overhead_sum = 0.0
        self._overhead_count = 0

    def record(self, model: str, status: int, stream: bool, overhead_s: float, upstream_s: float | None) -> None:
        self.requests[(model, status, stream)] += 1
        self._overhead[self._overhead_next] = overhead_s
        self._overhead_next = (self._overhead_next + 1) % _WINDOW
        self._overhead_sum += overhead_s
        self._overhead_count += 1
        if upstream_s is not None:
            self._upstream[bisect.bisect_left(_BUCKETS, upstream_s)] += 1
            self._upstream_sum += upstream_s
            self._upstream_count += 1

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def metered(self, model: str, prompt: int | None, completion: int | None) -> None:
        if prompt:
            self.tokens[(model, "prompt")] += prompt
        if completion:
            self.tokens[(model, "completion")] += completion

    def render(self) -> str:
        out = ["# HELP human_gateway_requests_total Answers given, by route id, HTTP status and stream or not.",
               "# TYPE human_gateway_requests_total counter"]
        for (model, status, stream), count in sorted(self.requests.items()):
            out.append(f'human_gateway_requests_total{{model="{_label(model)}",status="{status}",'
                       f'stream="{str(stream).lower()}"}} {count}')
        out += ["# HELP human_gateway_errors_total Requests refused or failed, by kind.",
                "# TYPE human_gateway_errors_total counter"]
        out += [f'human_gateway_errors_total{{kind="{_label(kind)}"}} {count}'
                for kind, count in sorted(self.errors.items())]
        out += ["# HELP human_gateway_in_flight Requests being served now.", "# TYPE human_gateway_in_flight gauge",
                f"human_gateway_in_flight {self.in_flight}"]
        out += ["# HELP human_gateway_upstream_seconds Time waiting for upstream (to the first output of a stream).",
                "# TYPE human_gateway_upstream_seconds histogram"]
        running = 0
        for bound, count in zip(_BUCKETS, self._upstream):
            running += count
            out.append(f'human_gateway_upstream_seconds_bucket{{le="{bound:g}"}} {running}')
        out.append(f'human_gateway_upstream_seconds_bucket{{le="+Inf"}} {self._upstream_count}')
        out.append(f"human_gateway_upstream_seconds_sum {self._upstream_sum:.6f}")
        out.append(f"human_gateway_upstream_seconds_count {self._upstream_count}")
        out += ["# HELP human_gateway_overhead_seconds Time spent in the gateway itself, last 4096 requests.",
                "# TYPE human_gateway_overhead_seconds summary"]
        window = sorted(self._overhead[:min(self._overhead_count, _WINDOW)])
        for quantile in _QUANTILES:
            value = window[min(len(window) - 1, int(quantile * len(window)))] if window else 0.0
            out.append(f'human_gateway_overhead_seconds{{quantile="{quantile:g}"}} {value:.6f}')
        out.append(f"human_gateway_overhead_seconds_sum {self._overhead_sum:.6f}")
        out.append(f"human_gateway_overhead_seconds_count {self._overhead_count}")
        out += ["# HELP human_gateway_tokens_total Tokens metered, by route id and kind.",
                "# TYPE human_gateway_tokens_total counter"]
        out += [f'human_gateway_tokens_total{{model="{_label(model)}",kind="{kind}"}} {count}'
                for (model, kind), count in sorted(self.tokens.items())]
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    """A label value, escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
