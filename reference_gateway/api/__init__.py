"""The gateway's HTTP API: chat completions, models, provider keys, and the error shapes."""
