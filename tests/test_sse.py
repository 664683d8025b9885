"""Tests for provara_kit.sse: spec cases, hypothesis properties, httpx-sse parity, corpus replay."""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import pytest
from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder as HttpxLineDecoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.sse import (
    ServerSentEvent,
    SSEDecoder,
    aiter_sse,
    encode_comment,
    encode_event,
)

Ev = tuple[str, str, str | None, int | None]

# ----------------------------------------------------------------------------- helpers


def as_tuples(events: Iterable[ServerSentEvent]) -> list[Ev]:
    return [(e.data, e.event, e.id, e.retry) for e in events]


def decode(chunks: Sequence[bytes]) -> tuple[list[Ev], SSEDecoder]:
    """Feed ``chunks`` then end the stream; return the events and the decoder."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    assert decoder.end() == []
    return as_tuples(events), decoder


def outcome(chunks: Sequence[bytes]) -> tuple[list[Ev], bool, int, str | None]:
    events, decoder = decode(chunks)
    return events, decoder.truncated, decoder.comments, decoder.last_event_id


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in pairwise([0, *points, len(data)])]


def every_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


_LINE_END = re.compile("\r\n|\r|\n")


def reference(data: bytes) -> tuple[list[Ev], bool, int, str | None]:
    """A literal, slow transcription of the WHATWG event-stream interpretation rules."""
    text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _LINE_END.split(text)
    partial = lines.pop()  # what follows the last line end
    events: list[Ev] = []
    data_buf, event_buf, id_buf = "", "", None
    last_id: str | None = None
    retry: int | None = None
    comments = 0
    pending = False
    for line in lines:
        if line == "":
            last_id = id_buf
            if data_buf:
                events.append((data_buf[:-1], event_buf or "message", id_buf, retry))
            data_buf, event_buf, retry, pending = "", "", None, False
            continue
        if line.startswith(":"):
            comments += 1
            continue
        pending = True
        if ":" in line:
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data_buf += value + "\n"
        elif name == "event":
            event_buf = value
        elif name == "id":
            if "\0" not in value:
                id_buf = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events, pending or partial != "", comments, last_id


def httpx_decode(data: bytes) -> list[tuple[str, str, str, int | None]]:
    """httpx-sse's decoder, fed line by line the way its EventSource does."""
    lines_dec, decoder = HttpxLineDecoder(), HttpxSSEDecoder()
    out: list[tuple[str, str, str, int | None]] = []
    for line in lines_dec.decode(data.decode("utf-8", "replace")) + lines_dec.flush():
        sse = decoder.decode(line)
        if sse is not None:
            out.append((sse.data, sse.event, sse.id, sse.retry))
    return out


# ----------------------------------------------------------------------------- line ends


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_each_line_ending(eol: str) -> None:
    raw = f"event: a{eol}data: 1{eol}data: 2{eol}{eol}data: 3{eol}{eol}".encode()
    assert decode([raw])[0] == [("1\n2", "a", None, None), ("3", "message", None, None)]


def test_mixed_line_endings() -> None:
    raw = b"data: a\rdata: b\r\ndata: c\n\r\ndata: d\r\rdata: e\n\n"
    assert decode([raw])[0] == [
        ("a\nb\nc", "message", None, None),
        ("d", "message", None, None),
        ("e", "message", None, None),
    ]


def test_lf_cr_is_two_line_ends() -> None:
    # "\n\r" is LF then CR: a line end followed by a blank line, so the event dispatches.
    assert decode([b"data: a\n\r"])[0] == [("a", "message", None, None)]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    events, decoder = decode([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert events == [("a\nb", "message", None, None)]
    assert not decoder.truncated


def test_cr_at_chunk_end_then_other_text() -> None:
    assert decode([b"data: a\r", b"\r", b"data: b\r", b"\r"])[0] == [
        ("a", "message", None, None),
        ("b", "message", None, None),
    ]


@pytest.mark.parametrize(
    "chunks",
    [[b"data: x\ny", b"\n\n"], [b"data: x\n", b"y: 1\n\n"], [b"data: x\ny\n", b"\n"]],
)
def test_one_line_then_more_in_first_chunk(chunks: list[bytes]) -> None:
    assert decode(chunks)[0] == reference(b"".join(chunks))[0] == [("x", "message", None, None)]


def test_cr_then_empty_and_multibyte_pending_chunks() -> None:
    # The skipped LF may arrive after chunks that decode to nothing.
    chunks = [b"data: \xe2", b"\x82", b"\xac\r", b"", b"\n", b"\r\n"]
    assert decode(chunks)[0] == [("€", "message", None, None)]


# ----------------------------------------------------------------------------- fields


def test_comments_are_counted_never_dispatched() -> None:
    raw = b": OPENROUTER PROCESSING\n\n:\n\ndata: x\n: inline\n\n: bye\n"
    events, decoder = decode([raw])
    assert events == [("x", "message", None, None)]
    assert decoder.comments == 4
    assert not decoder.truncated


def test_comment_only_stream() -> None:
    events, decoder = decode([encode_comment("ping") * 3])
    assert events == []
    assert decoder.comments == 3
    assert not decoder.truncated


def test_multi_line_data_and_value_spacing() -> None:
    raw = b"data: a\ndata\ndata:b\ndata:  c\ndata: \n\n"
    assert decode([raw])[0] == [("a\n\nb\n c\n", "message", None, None)]


def test_empty_data_line_dispatches_empty_string() -> None:
    assert decode([b"data:\n\n", b"data\n\n"])[0] == [
        ("", "message", None, None),
        ("", "message", None, None),
    ]


def test_field_without_colon_and_unknown_fields() -> None:
    raw = b"foo: bar\nDATA: x\ndata : y\nevent\ndata: z\n\n"
    # "DATA" and "data " are unknown field names; "event" without colon sets type "".
    assert decode([raw])[0] == [("z", "message", None, None)]


def test_event_type_resets_after_each_dispatch() -> None:
    raw = b"event: first\ndata: 1\n\ndata: 2\n\nevent: \ndata: 3\n\n"
    assert [e[1] for e in decode([raw])[0]] == ["first", "message", "message"]


def test_event_type_set_by_block_without_data_is_discarded() -> None:
    raw = b"event: lost\n\ndata: x\n\n"
    assert decode([raw])[0] == [("x", "message", None, None)]


def test_blank_data_not_dispatched() -> None:
    events, decoder = decode([b"event: a\nid: 1\nretry: 5\n\n\n\n"])
    assert events == []
    assert decoder.last_event_id == "1"  # the id still becomes the last event id
    assert not decoder.truncated


def test_id_persists_across_events() -> None:
    raw = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n"
    events, decoder = decode([raw])
    assert [e[2] for e in events] == ["1", "1", "2", ""]
    assert decoder.last_event_id == ""


def test_id_with_nul_is_ignored() -> None:
    raw = b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n"
    events, decoder = decode([raw])
    assert [e[2] for e in events] == ["7", "7"]
    assert decoder.last_event_id == "7"


def test_id_in_unfinished_event_is_not_applied() -> None:
    _, decoder = decode([b"id: 1\ndata: a\n\nid: 2\ndata: b\n"])
    assert decoder.last_event_id == "1"
    assert decoder.truncated


@pytest.mark.parametrize(
    "value", ["", "1a", "-1", "+1", "  1", "1 ", "1.5", "1_000", "\u0661\u0662", "\uff11"]
)
def test_retry_must_be_ascii_digits(value: str) -> None:
    raw = f"retry:{value}\ndata: x\n\n".encode()
    assert decode([raw])[0] == [("x", "message", None, None)]


def test_retry_digits_and_per_event() -> None:
    raw = b"retry: 0100\ndata: a\n\ndata: b\n\n"
    assert [e[3] for e in decode([raw])[0]] == [100, None]


def test_field_order_in_block_does_not_matter() -> None:
    raw = b"data: x\nid: 3\nevent: e\nretry: 9\n\n"
    assert decode([raw])[0] == [("x", "e", "3", 9)]


def test_anthropic_shape() -> None:
    raw = b'event: ping\ndata: {"type": "ping"}\n\nevent: message_stop\ndata: {}\n\n'
    assert decode([raw])[0] == [
        ('{"type": "ping"}', "ping", None, None),
        ("{}", "message_stop", None, None),
    ]


# ----------------------------------------------------------------------------- BOM, UTF-8


def test_leading_bom_is_dropped() -> None:
    assert decode([b"\xef\xbb\xbfdata: x\n\n"])[0] == [("x", "message", None, None)]


def test_leading_bom_split_across_chunks() -> None:
    chunks = [b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"]
    assert decode(chunks)[0] == [("x", "message", None, None)]


def test_only_one_bom_is_dropped() -> None:
    # A second BOM becomes part of the field name "\ufeffdata", an unknown field.
    assert decode([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"])[0] == []


def test_bom_later_in_stream_is_kept() -> None:
    raw = b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n"
    assert decode([raw])[0] == [("a", "message", None, None), ("\ufeffc", "message", None, None)]


def test_invalid_utf8_becomes_replacement_character() -> None:
    raw = b"data: a\xffb\xc3(\xed\xa0\x80\n\n"
    assert decode([raw])[0] == [(raw[6:-2].decode("utf-8", "replace"), "message", None, None)]
    assert "\ufffd" in decode([raw])[0][0][0]


def test_utf8_character_split_across_chunks() -> None:
    raw = "data: é€🙂日本\n\n".encode()
    for cut in range(1, len(raw)):
        assert decode([raw[:cut], raw[cut:]])[0] == [("é€🙂日本", "message", None, None)]
    assert decode(every_byte(raw))[0] == [("é€🙂日本", "message", None, None)]


def test_incomplete_utf8_at_end_is_truncated() -> None:
    events, decoder = decode([b"data: x\n\n\xe2\x82"])
    assert events == [("x", "message", None, None)]
    assert decoder.truncated


# ----------------------------------------------------------------------------- truncation


@pytest.mark.parametrize(
    ("raw", "truncated"),
    [
        (b"data: a\n\n", False),
        (b"", False),
        (b"data: a\n\ndata: b", True),  # partial line
        (b"data: a\n\ndata: ", True),
        (b"data: a\n\nd", True),
        (b"data: a\n\ndata: b\n", True),  # data without the blank line
        (b"data: a\n\nid: 3\n", True),  # any field counts
        (b"data: a\n\nfoo\n", True),  # even an unknown one
        (b"data: a\n\ndata: b\r", True),  # CR ends the line but no blank line followed
        (b"data: a\n\n: keep-alive\n", False),  # comment-only tail
        (b"data: a\n\n: keep-alive\n: again\n", False),
        (b"data: a\n\n: keep-alive", True),  # a partial line, even a comment
        (b"data: a\n\n\n\n\n", False),
        (b"data: a\r\n\r\n", False),
        (b"data: a\r\n", True),
        (b"\xef\xbb\xbf", False),
        (b"\xef\xbb", True),
    ],
)
def test_truncated(raw: bytes, truncated: bool) -> None:
    expected = reference(raw)
    assert expected[1] is truncated
    for chunks in ([raw], every_byte(raw)):
        assert outcome(chunks) == expected


def test_truncated_false_before_end() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: x")
    assert decoder.truncated is False
    decoder.end()
    assert decoder.truncated is True


def test_large_event_across_many_chunks() -> None:
    payload = json.dumps({"text": "x" * 1_000_000})
    raw = encode_event(payload) + encode_event("[DONE]")
    chunks = [raw[i : i + 1024] for i in range(0, len(raw), 1024)]
    events, decoder = decode(chunks)
    assert events == [(payload, "message", None, None), ("[DONE]", "message", None, None)]
    assert not decoder.truncated


def test_many_events_per_chunk_mixed_shapes() -> None:
    raw = (
        b"data: 1\n\ndata: 2\n\n: c\n\nevent: e\ndata: 3\n\ndata: 4\nid: i\n\ndata: 5\n\n"
        b"data:6\n\n\n\ndata: 7\n\n\ndata: 8\n\n"
    )
    expected = reference(raw)
    assert outcome([raw]) == expected
    for cut in range(len(raw)):
        assert outcome(split_at(raw, [cut])) == expected


# ----------------------------------------------------------------------------- API


async def _agen(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_aiter_sse_yields_events_and_reports_truncation() -> None:
    decoder = SSEDecoder()
    chunks = [b"data: a\n", b"\ndata: b\n\nda", b"ta: c\n"]
    events = [e async for e in aiter_sse(_agen(chunks), decoder)]
    assert as_tuples(events) == [("a", "message", None, None), ("b", "message", None, None)]
    assert decoder.truncated


async def test_aiter_sse_default_decoder() -> None:
    events = [e async for e in aiter_sse(_agen([encode_event("x", event="y")]))]
    assert as_tuples(events) == [("x", "y", None, None)]


def test_server_sent_event_defaults_and_json() -> None:
    event = ServerSentEvent('{"a": [1, 2]}')
    assert (event.event, event.id, event.retry) == ("message", None, None)
    assert event.json() == {"a": [1, 2]}
    with pytest.raises(AttributeError):
        event.extra = 1  # type: ignore[attr-defined]


def test_encode_event() -> None:
    assert encode_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event("") == b"data: \n\n"
    assert encode_event("a\r\nb\rc\nd", event="e", id="1", retry=30) == (
        b"event: e\nid: 1\nretry: 30\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    assert encode_event("x\n") == b"data: x\ndata: \n\n"
    assert encode_event("é") == "data: é\n\n".encode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "1\n"},
        {"id": "\r1"},
        {"id": "1\x00"},
        {"retry": -1},
    ],
)
def test_encode_event_rejects_bad_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


def test_encode_comment() -> None:
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment() == b":\n\n"
    assert encode_comment("a\nb\r\nc") == b": a\n: b\n: c\n\n"
    events, decoder = decode([encode_comment("a\nb") + encode_event("x")])
    assert events == [("x", "message", None, None)]
    assert decoder.comments == 2


# ----------------------------------------------------------------------------- hypothesis

_TOKENS = [
    b"data",
    b"data:",
    b"data: ",
    b"event: ",
    b"event:",
    b"id: ",
    b"id",
    b"retry: ",
    b"retry:",
    b"10",
    b"x",
    b" ",
    b":",
    b": ping",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\n\ndata: ",
    b"\x00",
    b"\xef\xbb\xbf",
    "é".encode(),
    "🙂".encode(),
    "日".encode(),
    b"\xff",
    b"\xe2\x82",
    b'{"a": 1}',
    b"data: [DONE]\n\n",
    b'data: {"k": "v"}\n\n',
]

_LINES = [
    "",
    "",
    "data: x",
    "data: {}",
    "data:y",
    "data",
    "data: é🙂",
    "event: e",
    "event:",
    "id: 1",
    "id",
    "id: a\0b",
    "retry: 5",
    "retry: x",
    ": ping",
    ":",
    "foo: bar",
    "\ufeffdata: bom",
]

token_soup = st.lists(st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=3)), max_size=40).map(
    b"".join
)
_block_lines = st.lists(st.sampled_from(_LINES[2:]), min_size=1, max_size=3).map(
    lambda lines: [*lines, ""]
)
line_soup = st.lists(
    st.tuples(
        st.one_of(_block_lines, st.lists(st.sampled_from(_LINES), max_size=3)),
        st.sampled_from(["\n", "\r", "\r\n"]),
    ),
    max_size=10,
).map(lambda blocks: "".join(line + eol for lines, eol in blocks for line in lines).encode())
sse_bytes = st.one_of(
    token_soup,
    line_soup,
    st.tuples(line_soup, st.sampled_from(["", "data: partial", "data: x\ny", ": c"])).map(
        lambda pair: pair[0] + pair[1].encode()
    ),
)


@st.composite
def rechunked(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(sse_bytes)
    mode = draw(st.sampled_from(["few", "few", "many", "bytes"]))
    if mode == "bytes":
        return data, every_byte(data)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=3 if mode == "few" else 30))
    return data, split_at(data, cuts)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(rechunked())
def test_rechunking_does_not_change_the_result(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    assert outcome(chunks) == outcome([data])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(rechunked())
def test_matches_reference_spec_implementation(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    assert outcome([data]) == reference(data)
    assert outcome(chunks) == reference(data)


_text = st.text(st.characters(exclude_categories=["Cs"]))
_field = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@given(
    st.lists(
        st.tuples(
            _text,
            st.none() | _field,
            st.none() | _field.filter(lambda s: "\0" not in s),
            st.none() | st.integers(0, 10**12),
        ),
        max_size=8,
    ),
    st.lists(st.integers(0, 10_000), max_size=8),
)
def test_encode_decode_round_trip(
    specs: list[tuple[str, str | None, str | None, int | None]], cuts: list[int]
) -> None:
    raw = b"".join(encode_event(d, event=e, id=i, retry=r) for d, e, i, r in specs)
    expected: list[Ev] = []
    last_id: str | None = None
    for data, event, id_, retry in specs:
        last_id = id_ if id_ is not None else last_id
        expected.append((_normalize(data), event or "message", last_id, retry))
    for chunks in ([raw], split_at(raw, cuts)):
        events, decoder = decode(chunks)
        assert events == expected
        assert not decoder.truncated


@given(_text)
def test_encode_comment_round_trip(text: str) -> None:
    events, decoder = decode([encode_comment(text)])
    assert events == []
    assert decoder.comments == len(_normalize(text).split("\n"))
    assert not decoder.truncated


_value = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20)
_eol = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def well_formed_stream(draw: st.DrawFn) -> str:
    """Events that each carry data, with any mix of line ends, comments and fields."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        lines: list[str] = []
        for _ in range(draw(st.integers(0, 2))):
            lines.append(":" + draw(_value))
        if draw(st.booleans()):
            lines.append("event:" + draw(st.sampled_from(["", " "])) + draw(_value))
        if draw(st.booleans()):
            lines.append("id: " + draw(_value))  # may contain NUL: both ignore it
        if draw(st.booleans()):
            lines.append("retry: " + str(draw(st.integers(0, 99999))))
        for _ in range(draw(st.integers(1, 3))):
            value = draw(_value)
            prefix = draw(st.sampled_from(["data:", "data: "] + ([] if value else ["data"])))
            lines.append(prefix + value)
        draw(st.randoms()).shuffle(lines)
        for line in [*lines, ""]:
            out.append(line + draw(_eol))
    return "".join(out)


@settings(max_examples=300)
@given(well_formed_stream(), st.lists(st.integers(0, 400), max_size=10))
def test_matches_httpx_sse_on_well_formed_streams(text: str, cuts: list[int]) -> None:
    # httpx-sse differs only outside this domain: it dispatches blocks that set event, id
    # or retry without data, accepts any int() form for retry, keeps a leading BOM and
    # reports "no id" as "" (so None is compared as "").
    raw = text.encode()
    expected = httpx_decode(raw)
    for chunks in ([raw], split_at(raw, cuts)):
        events = decode(chunks)[0]
        assert [(d, e, i or "", r) for d, e, i, r in events] == expected


# ----------------------------------------------------------------------------- corpus

CORPUS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "wire-corpus"


def _corpus_files() -> list[object]:
    files = sorted(CORPUS_DIR.glob("*/extracted/*.sse")) + sorted(CORPUS_DIR.glob("*/*.sse"))
    if not files:
        reason = f"wire-fixture corpus with *.sse files not found at {CORPUS_DIR}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-corpus")]
    return [pytest.param(p, id=str(p.relative_to(CORPUS_DIR))) for p in files]


@pytest.mark.parametrize("path", _corpus_files())
def test_wire_corpus_replay(path: Path) -> None:
    raw = path.read_bytes()
    events, decoder = decode([raw])
    assert events, "a recorded stream yields events"
    assert not decoder.truncated
    assert outcome([raw]) == reference(raw)
    for event in events:
        if event[0] != "[DONE]":
            json.loads(event[0])
    rng = random.Random(path.name)
    for _ in range(20):
        cuts = [rng.randrange(len(raw)) for _ in range(rng.randint(1, 60))]
        assert outcome(split_at(raw, cuts)) == outcome([raw])
    assert outcome(every_byte(raw)) == outcome([raw])
