"""The request log of a usage page: one line per request, its attempts folded in.

A line shows when the request came, the model asked for and the one that served, the
final status, the time spent in its attempts and the time to first token, the tokens, the
cost of all its attempts (flagged when an attempt was unpriced, so the figure is only what
is known), what counted estimated tokens, and the path through retries and fallbacks:
``openai/gpt-x 429 → anthropic/claude-y 200``.
"""

from __future__ import annotations

from reference_gateway.dashboard.figures import count, key_label, milliseconds, usd
from reference_gateway.dashboard.page import e
from reference_gateway.store.usage_reports import LoggedAttempt, LoggedRequest

__all__ = ["PAGE_SIZE", "log_table"]

PAGE_SIZE = 50


def _counted_by(attempt: LoggedAttempt) -> str:
    found = attempt.input_tokens_method or "unknown"
    produced = attempt.output_tokens_method or "unknown"
    return found if found == produced else f"input: {found}, output: {produced}"


def _flags(request: LoggedRequest) -> str:
    flags = []
    if request.unpriced:
        flags.append(
            '<span class="flag" title="an attempt was at a model with no price: the cost '
            'shown leaves it out">unpriced</span>'
        )
    if request.estimated:
        methods = "; ".join(sorted({_counted_by(a) for a in request.attempts if a.estimated}))
        flags.append(
            f'<span class="flag" title="counted by {e(methods)}">estimated tokens '
            f"({e(methods)})</span>"
        )
    return " ".join(flags)


def _status(request: LoggedRequest) -> str:
    final = request.final
    if final.error is None:
        return f'<span class="ok">{final.status}</span>'
    return f'<span class="flag">{final.status} {e(final.error)}</span>'


def _path(request: LoggedRequest) -> str:
    steps = []
    for attempt in request.attempts:
        failed = attempt.error is not None
        title = f"{attempt.error or 'served'}; {key_label(attempt.key_source, attempt.key_hint)}"
        steps.append(
            f'<span class="{"step failed" if failed else "step"}" title="{e(title)}">'
            f"{e(attempt.public_model)} {attempt.status}</span>"
        )
    return " → ".join(steps)


def _models(asked: str, answered: str) -> str:
    """``asked → served``, or the one model when they are the same."""
    if asked == answered:
        return f"<code>{e(asked)}</code>"
    return f"<code>{e(asked)}</code> → <code>{e(answered)}</code>"


def _line(request: LoggedRequest) -> str:
    served = request.served
    asked = request.requested_model or "—"
    answered = served.public_model if served else "none"
    cost = usd(request.cost_picodollars)
    if request.unpriced:
        cost = (
            f'{cost}+ <span class="flag">unpriced</span>'
            if request.cost_picodollars
            else ('<span class="flag">cost unknown</span>')
        )
    return (
        f'<tr id="request-{e(request.request_id)}">'
        f"<td><time>{e(request.started_at.replace('T', ' ')[:19])}</time></td>"
        f"<td>{_models(asked, answered)}</td>"
        f"<td>{_status(request)}</td>"
        f"<td class=num>{milliseconds(request.latency_ms)}</td>"
        f"<td class=num>{milliseconds(served.ttft_ms if served else None)}</td>"
        f"<td class=num>{count(request.input_tokens)} / {count(request.output_tokens)}</td>"
        f"<td class=num>{cost}</td>"
        f"<td>{_flags(request)}</td>"
        f'<td class="path">{_path(request)}</td></tr>'
    )


def log_table(requests: list[LoggedRequest]) -> str:
    """The log's table (its section heading and paging are the page's)."""
    head = (
        "<tr><th>Time (UTC)</th><th>Requested → served</th><th>Status</th>"
        '<th class=num title="time spent in the attempts, summed">Latency</th>'
        '<th class=num title="time to first token of the served attempt">TTFT</th>'
        "<th class=num>Tokens in / out</th><th class=num>Cost</th><th>Flags</th>"
        "<th>Attempts</th></tr>"
    )
    body = "".join(_line(request) for request in requests)
    return (
        f'<div class="scroll"><table class="log"><thead>{head}</thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
