"""``nox -s bench``: the reference gateway's overhead beside LiteLLM's proxy.

One run starts a fixed-answer nginx upstream (:mod:`bench.upstream`), the gateway and
LiteLLM's proxy as real subprocesses (:mod:`bench.servers`), loads each in turn with wrk
(:mod:`bench.load`), adds the SSE decoder comparison (:mod:`bench.sse_decoders`) and the
offline conformance suite's time per adapter (:mod:`bench.conformance_time`), and prints
and writes the medians (:mod:`bench.report`). ``python -m bench --help`` lists the options.
"""
