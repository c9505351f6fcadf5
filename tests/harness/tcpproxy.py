"""A TCP proxy for ZooKeeper traffic: adds latency, and can drop a connection right after the
server answered a successful create or multi (the reply never reaches the client, the write
is applied: the client must recognise its own claim when it retries).

Why latency: on loopback a ZooKeeper round trip takes ~0.2 ms, so claimers started together
rarely overlap and a racy claimer can pass by luck. With a few milliseconds each way, the
window between a read and a write is wide open, as it is between hosts in a VPC.

ZooKeeper's framing (jute, big-endian): every message is a 4-byte length and a body. The
first message each way is the session handshake (ConnectRequest / ConnectResponse). Then a
request starts with a RequestHeader (xid int32, type int32), a reply with a ReplyHeader (xid
int32, zxid int64, err int32). A multi's reply body is a list of MultiHeader (type int32,
done bool, err int32) each followed by its result; type -1 marks a failed op.

    with TcpProxy("127.0.0.1", zk.port, latency_ms=5) as proxy:
        run_claimer(connect=f"127.0.0.1:{proxy.port}")
        proxy.drop_after_successful_writes(1)
"""
import asyncio
import struct
import threading
import time

OP_CREATE = 1
OP_MULTI = 14
OP_CREATE2 = 15
WRITE_OPS = (OP_CREATE, OP_MULTI, OP_CREATE2)


class _Frames:
    """Splits a byte stream into ZooKeeper messages."""

    def __init__(self):
        self.buf = bytearray()
        self.handshake_done = False

    def feed(self, data):
        self.buf += data
        frames = []
        while len(self.buf) >= 4:
            (length,) = struct.unpack(">i", self.buf[:4])
            if len(self.buf) < 4 + length:
                break
            body = bytes(self.buf[4:4 + length])
            del self.buf[:4 + length]
            first = not self.handshake_done
            self.handshake_done = True
            frames.append((first, body))
        return frames


def successful_write_op(reply, pending_types):
    """The request type when reply answers a create or multi that succeeded, else None."""
    if len(reply) < 16:
        return None
    xid, _zxid, err = struct.unpack(">iqi", reply[:16])
    op = pending_types.pop(xid, None)
    if op not in WRITE_OPS or err != 0:
        return None
    if op == OP_MULTI:
        if len(reply) < 16 + 9:
            return None
        (first_type,) = struct.unpack(">i", reply[16:20])
        return op if first_type != -1 else None
    return op


class TcpProxy:
    def __init__(self, target_host, target_port, listen_host="127.0.0.1", latency_ms=0.0,
                 on_write=None):
        """on_write(op), when given, runs on the proxy's thread for every successful create
        or multi reply before it is forwarded; True drops that reply and the connection."""
        self.on_write = on_write
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.latency = latency_ms / 1000.0
        self.port = None
        self.connections = 0
        self.dropped = 0
        self._drops_left = 0
        self._lock = threading.Lock()
        self._loop = None
        self._server = None
        self._thread = None
        self._writers = set()

    # -- control, from the test's thread --------------------------------------------------
    def drop_after_successful_writes(self, count=1):
        """The next `count` successful create/multi replies are swallowed and their
        connections closed."""
        with self._lock:
            self._drops_left = count

    def set_latency(self, latency_ms):
        self.latency = latency_ms / 1000.0

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, self.listen_host, 0, backlog=512))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="tcpproxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self):
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the event loop's side ------------------------------------------------------------
    async def _shutdown(self):
        self._server.close()
        await self._server.wait_closed()
        for w in list(self._writers):
            w.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _take_drop(self, op):
        if self.on_write is not None and self.on_write(op):
            with self._lock:
                self.dropped += 1
            return True
        with self._lock:
            if self._drops_left > 0:
                self._drops_left -= 1
                self.dropped += 1
                return True
        return False

    def _take_drop_of(self, reply, pending):
        op = successful_write_op(reply, pending)
        return op is not None and self._take_drop(op)

    async def _accept(self, client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_w, server_w))
        pending = {}  # xid -> request type, of this connection
        state = {"closed": False}

        def close_both():
            if not state["closed"]:
                state["closed"] = True
                client_w.transport.abort()
                server_w.transport.abort()

        async def pump(reader, writer, to_server):
            frames = _Frames()
            queue = asyncio.Queue()

            async def deliver():
                while True:
                    due, data = await queue.get()
                    if data is None:
                        break
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if state["closed"]:
                        break
                    writer.write(data)
                    await writer.drain()

            sender = asyncio.ensure_future(deliver())
            try:
                while not state["closed"]:
                    data = await reader.read(65536)
                    if not data:
                        break
                    for first, body in frames.feed(data):
                        if first:
                            continue
                        if to_server and len(body) >= 8:
                            xid, op = struct.unpack(">ii", body[:8])
                            pending[xid] = op
                        elif not to_server and self._take_drop_of(body, pending):
                            # The write is applied; its answer is lost with the connection.
                            close_both()
                            return
                    queue.put_nowait((time.monotonic() + self.latency, data))
            except (ConnectionError, OSError):
                pass
            finally:
                queue.put_nowait((0, None))
                try:
                    await sender
                except (ConnectionError, OSError, asyncio.CancelledError):
                    pass
                close_both()

        # A frame is forwarded whole or not at all only for the reply we drop; everything
        # else streams through unchanged.
        await asyncio.gather(pump(client_r, server_w, True), pump(server_r, client_w, False))
        self._writers.discard(client_w)
        self._writers.discard(server_w)
