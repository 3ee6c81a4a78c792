"""The pure core of `human`: every decision, none of the I/O.

Nothing here opens a socket, reads a file, sleeps or looks at a clock it was not
handed; the clients and transports above only carry out what these modules decide,
so sync and async behave alike by construction.

    secret      keys that cannot be printed; the scrubber for text that may hold one
    schema      the small JSON Schema validator (config file, tool arguments)
    wire        the request body for a target
    sse         bytes of a text/event-stream -> events
    stream      stream events -> typed deltas and one ChatResponse
    shapes      the tolerant readers of usage, reasoning and error objects
    parse       a whole (non-streamed) body -> ChatResponse
    classify    an HTTP error answer -> the right error class
    retry       the retry / fallback / circuit-breaker plan, as a generator
    pump        a stream's bytes -> events, with the end rules ([DONE], error events, cut-offs)
    handle      the shell every stream handle shares: iterate once, close, until_done
    http1       an HTTP/1.1 response's bytes -> status, headers, body (every framing, 1xx)
    decoding    Content-Encoding gzip / deflate (br / zstd when installed)
    redirect    which redirects are followed, and which headers survive them
    proxy       HTTP(S)_PROXY / ALL_PROXY / NO_PROXY and the "proxy" key -> the proxy to use

Internal: import public names from `human`, not from here.
"""
