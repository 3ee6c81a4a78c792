"""`ChatResponse.cost` through both clients (issue 12): a stream costs what the same usage
costs whole, an alias is priced as the model that served it, the config's prices win,
a local server is free, and nothing is priced until someone asks."""

from __future__ import annotations

from decimal import Decimal

import human
from human.config import Target
from human.config.registry import lookup
from human.pricing import Pricer

USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
         "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 100},
         "completion_tokens_details": {"reasoning_tokens": 200}}
PRICES = [{"model": "gpt-4o-2024-08-06", "input_mtok": "2.5", "cache_read_mtok": "1.25",
           "cache_write_mtok": "3.125", "output_mtok": "10"}]
# 100 uncached at 2.5, 1000 cached at 1.25, 100 written at 3.125, 300 out (reasoning inside) at 10
EXPECTED = (Decimal(100) * Decimal("2.5") + Decimal(1000) * Decimal("1.25") + Decimal(100) * Decimal("3.125")
            + Decimal(300) * 10) / 10**6


def chunk(delta: dict, **extra) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}], **extra}


def test_a_stream_costs_exactly_what_the_same_usage_costs_whole(driver, fake, config_for):
    handle = driver.client(config_for(prices=PRICES))
    fake.completion("Hello there", model="gpt-4o-2024-08-06", usage=USAGE)
    whole = handle.chat("hi")
    fake.stream([chunk({"role": "assistant", "content": "Hello"}), chunk({"content": " there"}),
                 {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [],
                  "usage": USAGE}])
    streamed = handle.stream("hi")
    assert whole.usage == streamed.usage
    assert whole.cost == streamed.cost
    assert whole.cost.amount == EXPECTED and whole.cost.source == "config prices: gpt-4o-2024-08-06"


def test_an_alias_is_priced_as_the_model_that_served_it(driver, fake, config_for):
    handle = driver.client(config_for(prices=PRICES))
    fake.completion("hi", model="gpt-4o-2024-08-06", usage=USAGE)
    response = handle.chat("hi", model="fast")  # a proxy alias; the server says who answered
    assert response.model_requested == "fast" and response.model == "gpt-4o-2024-08-06"
    assert response.cost.amount == EXPECTED


def test_a_local_server_is_free_unless_the_config_prices_it(driver, fake, config_for):
    fake.completion("hi", model="llama3", usage=USAGE)
    free = driver.client(config_for()).chat("hi")
    assert free.cost.amount == 0 and "local server" in free.cost.source and free.no_cost_reason is None
    fake.completion("hi", model="llama3", usage=USAGE)
    priced = driver.client(config_for(prices=[{"model": "*", "provider": "local", "input_mtok": 1,
                                               "output_mtok": 1}])).chat("hi")
    assert priced.cost.amount == Decimal(1500) / 10**6


def test_nothing_is_priced_until_someone_asks(driver, fake, config_for):
    fake.completion("hi", usage=USAGE)
    response = driver.client(config_for()).chat("hi")
    assert response._priced is None  # not worked out on the request path
    first = response.cost
    assert response._priced is not None and response.cost is first


def test_a_response_from_a_retry_is_priced_too(driver, fake, config_for):
    fake.reply(status=503, json={"error": {"message": "busy"}})
    fake.completion("hi", model="gpt-4o-2024-08-06", usage=USAGE)
    response = driver.client(config_for(prices=PRICES)).chat("hi")
    assert response.attempt == 2 and response.cost.amount == EXPECTED


def test_the_snapshot_prices_a_cloud_answer_with_its_service_tier():
    """The path the fake server cannot take (it is local): a Target for OpenAI itself."""
    target = Target(provider="openai", model="gpt-5", url="https://api.openai.com/v1/chat/completions",
                    base_url="https://api.openai.com/v1", key=None, key_source="", row=lookup("openai"))
    usage = human.Usage(prompt_tokens=20000, completion_tokens=4000, cached_tokens=5000)
    price = Pricer().price_answer
    flex = human.ChatResponse("x", usage=usage, model="gpt-5-2025-08-07", raw={"service_tier": "flex"},
                              _pricing=(price, target, 1.795e9))
    default = human.ChatResponse("x", usage=usage, model="gpt-5-2025-08-07", raw={"service_tier": "default"},
                                 _pricing=(price, target, 1.795e9))
    assert flex.cost.amount == Decimal("0.0296875") and default.cost.amount == Decimal("0.059375")
    assert flex.cost.source.endswith("openai/gpt-5")
    # a served name the data does not know is priced as the name asked for...
    renamed = human.ChatResponse("x", usage=usage, model="internal-v7", _pricing=(price, target, 1.795e9))
    assert renamed.cost == default.cost
    # ...and when neither is known there is no cost, and a reason
    unknown_target = Target(provider="openai", model="gpt-nonexistent", url=target.url, base_url=target.base_url,
                            key=None, key_source="", row=target.row)
    unknown = human.ChatResponse("x", usage=usage, model="gpt-nonexistent-2", _pricing=(price, unknown_target, 1.795e9))
    assert unknown.cost is None and "gpt-nonexistent-2" in unknown.no_cost_reason
