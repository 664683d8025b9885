"""A lean HTTP/1.1 transport for the providers' httpx clients.

The SDK's adapters talk through ``httpx.AsyncClient``; its default transport (httpcore)
costs several hundred microseconds per request and scans its whole pool, with a syscall
per idle connection, on every request, which dominates a gateway's overhead under
concurrency. :class:`FastTransport` is an ``httpx.AsyncBaseTransport`` built on asyncio
protocols and the ``httptools`` parser uvicorn already uses:

* one keep-alive pool per origin, last-in first-out; a connection the server closed while
  idle is noticed by asyncio at once (no polling), and dropped;
* the request is written in one call (head and body), the response parsed incrementally,
  its body handed to httpx as it arrives (SSE streams stay streams);
* a reused connection the server closed before a byte of the answer arrived is retried
  once on a new connection: the usual keep-alive race (a new connection is never retried);
* connect and read timeouts come from the request (httpx's ``timeout`` extension) and fail
  as httpx's own exceptions, as do refused connections, resets and malformed responses,
  so the SDK's error mapping is unchanged.

Plain HTTP/1.1 with TLS only: no HTTP/2, no proxies. :func:`provider_transport` returns
``None`` (httpx's default transport) when a proxy is configured in the environment.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import httptools
import httpx

__all__ = ["FastTransport", "provider_transport"]

_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)
_HIGH_WATER = 1 << 20  # stop reading from the socket past 1 MiB of unread body


class _StaleConnection(Exception):
    """A reused connection closed before any of the response arrived."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: writes requests, parses responses."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._status = 0
        self._head_done = False
        self._complete = False
        self._keep_alive = False
        self._received = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received = True
        parser = self._parser
        if parser is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and not self._complete:
            if not self._received:
                self._fail(_StaleConnection())
            elif not self._head_done:
                self._fail(
                    httpx.RemoteProtocolError("server disconnected before the response head")
                )
            else:
                self._fail(
                    httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
                )

    # -- httptools callbacks --------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._parser is not None:
            self._status = self._parser.get_status_code()
        self._head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # llhttp answers should_keep_alive() reliably only inside this callback.
        self._keep_alive = self._parser is not None and self._parser.should_keep_alive()
        self._complete = True
        self._wake()

    # -- use ------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._wake()

    async def _wait(self, seconds: float | None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            if seconds is None:
                await self._waiter
            else:
                async with asyncio.timeout(seconds):
                    await self._waiter
        finally:
            self._waiter = None

    def send(self, data: bytes) -> None:
        """Start a request/response exchange by writing the whole request."""
        self._parser = httptools.HttpResponseParser(self)
        self._headers = []
        self._reason = b""
        self._status = 0
        self._head_done = self._complete = self._received = self._keep_alive = False
        self._chunks.clear()
        self._buffered = 0
        self._error = None
        if self.transport is None or self.closed or self.transport.is_closing():
            raise _StaleConnection()
        self.transport.write(data)

    async def read_head(
        self, seconds: float | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, reason and headers; ``TimeoutError`` after ``seconds`` of silence."""
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait(seconds)
        return self._status, self._reason, self._headers

    async def read_body(self, seconds: float | None) -> bytes:
        """The body bytes that arrived since the last call; ``b""`` at the end."""
        while True:
            if self._chunks:
                chunks = self._chunks
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait(seconds)

    @property
    def reusable(self) -> bool:
        """The response was read whole and the server keeps the connection open."""
        return self._complete and self._keep_alive and not self.closed

    def finish(self) -> None:
        """The exchange is over: ready for the next request."""
        self._parser = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _ResponseStream(httpx.AsyncByteStream):
    """A response body read from its connection; the connection goes back to the pool
    once the body is fully read, and is closed if the reader stops early."""

    def __init__(
        self,
        pool: FastTransport,
        key: tuple[str, str, int],
        conn: _Connection,
        request: httpx.Request,
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._key = key
        self._conn: _Connection | None = conn
        self._request = request
        self._timeout = timeout

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        try:
            data = await conn.read_body(self._timeout)
        except TimeoutError:
            self._drop()
            raise httpx.ReadTimeout(
                "timed out reading the response body", request=self._request
            ) from None
        except _StaleConnection:
            self._drop()
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body",
                request=self._request,
            ) from None
        except httpx.TransportError as exc:
            self._drop()
            exc.request = self._request
            raise
        if data:
            return data
        self._conn = None
        self._pool._release(self._key, conn)
        raise StopAsyncIteration

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        conn = self._conn
        if conn is not None and conn.reusable:
            # Closed after the last byte arrived but before it was read (a stream consumer
            # stops at its terminal marker): the connection is still good.
            self._conn = None
            self._pool._release(self._key, conn)
            return
        self._drop()


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive transport on asyncio and httptools (see the module docstring).

    ``max_idle_per_origin`` caps the connections kept open between requests to one
    origin; ``idle_seconds`` is how long one may sit unused before it is closed.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_origin: int = 128,
        idle_seconds: float = 30.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle_seconds = idle_seconds
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    async def _connect(
        self, key: tuple[str, str, int], request: httpx.Request, seconds: float | None
    ) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if scheme == "https":
            kwargs = {"ssl": self._ssl(), "server_hostname": host}
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(_Connection, host, port, **kwargs)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"connecting to {host}:{port} timed out", request=request
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from None
        return conn

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        horizon = time.monotonic() - self._idle_seconds
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since >= horizon:
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        if self._closed or not conn.reusable:
            conn.close()
            return
        conn.finish()
        conn.idle_since = time.monotonic()
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self._max_idle:
            idle.pop(0).close()
        idle.append(conn)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        data = _serialize(request, body)
        read_timeout = timeouts.get("read")
        for attempt in (0, 1):
            conn = self._take_idle(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, request, timeouts.get("connect"))
            try:
                conn.send(data)
                status, reason, headers = await conn.read_head(read_timeout)
            except _StaleConnection:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise httpx.RemoteProtocolError(
                    "server disconnected without sending a response", request=request
                ) from None
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout(
                    "timed out waiting for the response", request=request
                ) from None
            except httpx.TransportError as exc:
                conn.close()
                exc.request = request
                raise
            except BaseException:
                conn.close()
                raise
            return httpx.Response(
                status,
                headers=headers,
                stream=_ResponseStream(self, key, conn, request, read_timeout),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
                request=request,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def _serialize(request: httpx.Request, body: bytes) -> bytes:
    """The request as bytes: request line, headers and the whole body."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    has_length = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"transfer-encoding":
            continue  # the body is sent whole, with a Content-Length
        if lower == b"content-length":
            has_length = True
        lines += (name, b": ", value, b"\r\n")
    if not has_length and (body or request.method in ("POST", "PUT", "PATCH")):
        lines += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


def provider_transport(environ: Mapping[str, str] = os.environ) -> httpx.AsyncBaseTransport | None:
    """A :class:`FastTransport`, or ``None`` (httpx's default) when a proxy is configured."""
    if any(environ.get(name) for name in _PROXY_VARIABLES):
        return None
    return FastTransport()
