"""The server's worker sends the writes of one turn of the event loop as one write."""

from __future__ import annotations

import asyncio

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from gateway_project.worker import CoalescingHttpToolsProtocol, CoalescingTransport


class SocketTransport(asyncio.Transport):
    """What the event loop hands a protocol, recording each write (each a system call)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_leave_in_one_write_at_its_end():
    socket = SocketTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.writelines([b"{", b"}"])
    assert socket.writes == []
    await next_turn()
    assert socket.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    transport.write(b"later")
    await next_turn()
    assert socket.writes[1:] == [b"later"]


async def test_close_sends_what_was_written_first_and_abort_drops_it():
    socket = SocketTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert (socket.writes, socket.closed) == ([b"last words"], True)
    await next_turn()  # the turn's own flush finds nothing left to send
    assert socket.writes == [b"last words"]

    socket = SocketTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await next_turn()
    assert (socket.writes, socket.aborted) == ([], True)


async def test_nothing_is_written_to_a_connection_the_client_closed():
    socket = SocketTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())
    transport.write(b"answer")
    socket.closed = True  # the peer went away within the turn
    await next_turn()
    assert socket.writes == []


async def json_app(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})


async def stream_app(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"data: 1\n\n", b"data: 2\n\n"):
        await asyncio.sleep(0.01)  # each event waited for, as from an upstream
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def serve(app) -> tuple[CoalescingHttpToolsProtocol, SocketTransport]:
    config = Config(app=app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="error")
    config.load()
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    socket = SocketTransport()
    protocol.connection_made(socket)
    return protocol, socket


async def test_a_json_answer_through_uvicorn_is_one_write_of_head_and_body():
    protocol, socket = serve(json_app)
    protocol.data_received(b"GET /v1/x HTTP/1.1\r\nHost: gw\r\n\r\n")
    for _ in range(20):
        await next_turn()
    [answer] = socket.writes
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"x-a: 1\r\n" in answer
    # No Content-Length from the app: uvicorn frames the body as one chunk and the end.
    assert answer.endswith(b'\r\n\r\nb\r\n{"ok":true}\r\n0\r\n\r\n')


@pytest.mark.parametrize("keep_alive", [True, False])
async def test_a_streams_events_still_leave_as_they_come(keep_alive):
    protocol, socket = serve(stream_app)
    connection = b"" if keep_alive else b"Connection: close\r\n"
    protocol.data_received(b"GET /v1/s HTTP/1.1\r\nHost: gw\r\n" + connection + b"\r\n")
    for _ in range(5):
        await next_turn()
    assert len(socket.writes) == 1 and socket.writes[0].startswith(b"HTTP/1.1 200 OK")
    await asyncio.sleep(0.1)
    # The last event and the end of the chunked body were sent in one turn: one write.
    assert socket.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"9\r\ndata: 2\n\n\r\n0\r\n\r\n"]
    assert socket.closed is not keep_alive
