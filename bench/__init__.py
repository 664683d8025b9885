"""``nox -s bench``: the reference gateway beside LiteLLM's proxy and Portkey's gateway.

One run starts a fixed-answer nginx upstream (:mod:`bench.upstream`), the gateway, its
other configurations (:mod:`bench.variants`), LiteLLM's proxy and Portkey's gateway
(:mod:`bench.portkey`) as real subprocesses (:mod:`bench.servers`), checks one answer of
each (:mod:`bench.probe`), loads each in turn with wrk (:mod:`bench.load`), adds the SSE
decoder comparison (:mod:`bench.sse_decoders`) and the offline conformance suite's time
per adapter (:mod:`bench.conformance_time`), and prints and writes the medians
(:mod:`bench.report`). ``python -m bench --help`` lists the options.
"""
