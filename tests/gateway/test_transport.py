"""The gateway's HTTP/1.1 transport against raw sockets: keep-alive, framing, failures."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from reference_gateway.transport import FastTransport, provider_transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """An asyncio TCP server scripted per connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return head + body

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def ok(body: bytes, *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + connection
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def chunked(*parts: bytes) -> bytes:
    out = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for part in parts:
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n\r\n"


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, FastTransport]]:
    transport = FastTransport()
    async with httpx.AsyncClient(transport=transport, timeout=2) as http:
        yield http, transport


async def test_keep_alive_reuses_one_connection(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await server.read_request(reader)) is not None:
            writer.write(ok(b'{"n": %d}' % len(server.requests)))
            await writer.drain()
            assert request

    async with RawServer(handler) as server:
        for n in range(1, 4):
            response = await http.post(f"{server.url}/v1/x?q=1", json={"a": n})
            assert response.status_code == 200
            assert response.json() == {"n": n}
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/x?q=1 HTTP/1.1\r\n")
    assert b"\r\ncontent-length: 7\r\n" in first.lower()
    assert first.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_stream_arrives_in_pieces(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"6\r\ndata: \r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"3\r\none\r\n0\r\n\r\n")
        await writer.drain()
        await server.read_request(reader)

    async with (
        RawServer(handler) as server,
        http.stream("POST", server.url, content=b"x") as response,
    ):
        pieces = response.aiter_bytes()
        assert await anext(pieces) == b"data: "
        release.set()
        assert b"".join([chunk async for chunk in pieces]) == b"one"


async def test_a_reused_connection_dropped_without_an_answer_is_retried_once(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answer one request, then drop the connection without a word (a keep-alive timeout
        # racing the next request).
        await server.read_request(reader)
        writer.write(ok(b"{}"))
        await writer.drain()
        await server.read_request(reader)

    async with RawServer(handler) as server:
        assert (await http.get(server.url)).status_code == 200
        assert (await http.get(server.url)).status_code == 200
    assert server.connections == 2


async def test_a_new_connection_dropped_without_an_answer_fails(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)

    async with RawServer(handler) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.get(server.url)
    assert server.connections == 1


async def test_an_idle_connection_the_server_closed_is_not_used(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(ok(b"{}"))
        await writer.drain()  # then the handler returns: the server closes the connection

    async with RawServer(handler) as server:
        assert (await http.get(server.url)).status_code == 200
        await asyncio.sleep(0.05)  # the close reaches the client while the connection idles
        assert (await http.get(server.url)).status_code == 200
    assert server.connections == 2
    assert len(server.requests) == 2  # no retry was needed: the dead one was skipped


async def test_connection_close_is_honoured(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, transport = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(ok(b"{}", close=True))
        await writer.drain()

    async with RawServer(handler) as server:
        await http.get(server.url)
        await http.get(server.url)
    assert server.connections == 2
    assert not any(transport._idle.values())


async def test_body_cut_short_is_a_remote_protocol_error(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with RawServer(handler) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            await http.get(server.url)


async def test_malformed_response_is_a_remote_protocol_error(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)

    async with RawServer(handler) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(server.url)


async def test_read_timeout(client: tuple[httpx.AsyncClient, FastTransport]) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        await asyncio.sleep(1)

    async with RawServer(handler) as server:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url, timeout=httpx.Timeout(5, read=0.1))


async def test_refused_connection_is_a_connect_error(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{port}/")


async def test_stopping_early_closes_an_unfinished_connection(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, transport = client
    finished = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        assert await reader.read() == b""  # the client hung up
        finished.set()

    async with RawServer(handler) as server:
        async with http.stream("GET", server.url) as response:
            assert await anext(response.aiter_bytes()) == b"first"
        await asyncio.wait_for(finished.wait(), 2)
    assert not any(transport._idle.values())


async def test_a_finished_body_closed_before_it_was_read_keeps_the_connection(
    client: tuple[httpx.AsyncClient, FastTransport],
) -> None:
    http, _ = client

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await server.read_request(reader) is not None:
            writer.write(chunked(b"data: a\n\n", b"data: [DONE]\n\n"))
            await writer.drain()

    async with RawServer(handler) as server:
        for _ in range(2):
            async with http.stream("GET", server.url) as response:
                await asyncio.sleep(0.05)  # everything has arrived
                assert (await anext(response.aiter_bytes())).startswith(b"data: a")
    assert server.connections == 1


def test_proxies_fall_back_to_httpx() -> None:
    assert provider_transport({"HTTPS_PROXY": "http://proxy:3128"}) is None
    assert isinstance(provider_transport({}), FastTransport)
