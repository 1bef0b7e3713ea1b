"""The HTTP destination of the fuzz run: answers every POST 200 at once, counts them,
and notes when a body carrying a marker (the end-to-end message's control id) came.
It runs on the fuzzer's event loop; bodies are not kept."""

from __future__ import annotations

import asyncio
import time


class Sink:
    def __init__(self) -> None:
        self.posts = 0
        self.markers: dict[bytes, float] = {}  # marker -> when its POST came
        self._watched: set[bytes] = set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, marker: bytes) -> None:
        self._watched.add(marker)

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port,
                                                  backlog=256)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            if self._tasks:
                await asyncio.wait(self._tasks)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                self.posts += 1
                for marker in self._watched:
                    if marker in body and marker not in self.markers:
                        self.markers[marker] = time.monotonic()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
