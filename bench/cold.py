"""(a') cold first call: import the library, build a client, make one request, check it, exit.

    python bench/cold.py CLIENT        CLIENT: none | human | httpx | aiohttp | openai

`none` is the baseline: the same script with no client (it still imports `spec`, which
imports nothing). `run.py` times whole processes and subtracts the baseline.
Exit status 0 = the answer was right, 3 = it was not.
"""

import sys

import spec

which = sys.argv[1]
ok = True

if which == "httpx":
    import json

    import httpx

    with httpx.Client() as c:
        r = c.post(spec.BASE + "/chat/completions", content=json.dumps(spec.request_body()), headers=spec.HEADERS)
        ok = r.status_code == 200 and json.loads(r.content)["choices"][0]["message"]["content"] == spec.COMPLETION_TEXT

elif which == "aiohttp":
    import asyncio
    import json

    import aiohttp

    async def main():
        async with aiohttp.ClientSession() as s:
            async with s.post(spec.BASE + "/chat/completions", data=json.dumps(spec.request_body()),
                              headers=spec.HEADERS) as r:
                body = await r.read()
                return r.status == 200 and json.loads(body)["choices"][0]["message"]["content"] == spec.COMPLETION_TEXT

    ok = asyncio.run(main())

elif which == "openai":
    import openai

    with openai.OpenAI(base_url=spec.BASE, api_key=spec.API_KEY) as c:
        r = c.chat.completions.create(model=spec.MODEL, messages=spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        ok = r.choices[0].message.content == spec.COMPLETION_TEXT

elif which == "human":
    import human

    with human.Client(base_url=spec.BASE, api_key=spec.API_KEY, model=spec.MODEL) as c:
        r = c.chat(spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        ok = r.content == spec.COMPLETION_TEXT

elif which != "none":
    sys.exit(f"unknown client {which!r}")

sys.exit(0 if ok else 3)
