"""Listeners: one threaded HTTP(S) server per configured address, one service each.

Which service answers is the listener's, never the request's: a request signed for
"cloudformation" that arrives on the EC2 listener fails its credential scope, as it would
at ec2.<region>.amazonaws.com. The HTTP layer also carries out the transport faults the
services ask for (drop the connection, send less body than Content-Length promised, set
the IP TTL of an IMDS token reply to the instance's hop limit) and can refuse connections
altogether (service down) by closing its listening socket and reopening it on the same
port later.
"""

import email.utils
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .api import Request

log = logging.getLogger("fakeaws")
SERVICES = ("imds", "ec2", "cloudformation", "autoscaling", "control")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms on Linux), which would distort every timing measured here.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection is closed after this

    def setup(self):
        # The TLS handshake runs here, on the connection's thread, not in accept().
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()

    def version_string(self):
        # Only http.server's own errors (a malformed request line) use this.
        return self.server.listener.server_header or "fakeaws"

    def date_time_string(self, timestamp=None):
        # The Date header is the fake's clock: clients correct their skew from it.
        return email.utils.formatdate(self.server.app.clock.now(), usegmt=True)

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.client_address[0], fmt % args)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self):
        listener = self.server.listener
        if listener.down:
            self.close_connection = True
            return
        body = self._read_body()
        path, _, query = self.path.partition("?")
        req = Request(self.command, path, query, self.headers, body, self.client_address[0],
                      listener.config)
        self._write(self.server.app.dispatch(listener, req))

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _serve

    def _write(self, resp):
        if resp.fault == "drop":
            self.close_connection = True
            return
        restore_ttl = None
        ttl_option = ((socket.IPPROTO_IP, socket.IP_TTL)
                      if self.server.address_family == socket.AF_INET
                      else (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS))
        if resp.ip_ttl is not None:
            restore_ttl = self.request.getsockopt(*ttl_option)
            self.request.setsockopt(*ttl_option, resp.ip_ttl)
        self.send_response_only(resp.status)
        self.send_header("Date", self.date_time_string())
        if self.server.listener.server_header:
            self.send_header("Server", self.server.listener.server_header)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        body = resp.body if self.command != "HEAD" else b""
        if resp.fault == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        if restore_ttl is not None:
            self.request.setsockopt(*ttl_option, restore_ttl)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of clients (a cluster
    # booting at once, a race test) and they retry a second later.
    request_queue_size = 128

    def __init__(self, address, listener, app, ssl_context):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = listener
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request, client_address):
        # Clients that hang up mid-request (fault tests do it on purpose) are not errors.
        log.debug("connection from %s ended abnormally", client_address, exc_info=True)


class Listener:
    """One address, one service, optionally TLS, optionally bound to one instance (IMDS)."""

    def __init__(self, app, config):
        unknown = set(config) - {"service", "host", "port", "tls", "instance_id", "name"}
        if unknown:
            raise ValueError(f"listener: unknown keys {sorted(unknown)}")
        if config.get("service") not in SERVICES:
            raise ValueError(f"listener: service must be one of {SERVICES}")
        if config.get("instance_id") and config["service"] != "imds":
            raise ValueError("listener: instance_id binds IMDS listeners only")
        self.app = app
        self.config = dict(config)
        self.service = config["service"]
        self.name = config.get("name", self.service)
        self.host = config.get("host", "127.0.0.1")
        self.port = int(config.get("port", 0))
        self.server_header = {"ec2": "AmazonEC2", "imds": "EC2ws", "control": "fakeaws"}.get(self.service)
        self.down = False
        self._ssl = None
        tls = config.get("tls")
        if tls:
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(tls["cert"], tls["key"])
        self._server = None
        self._thread = None
        self._lock = threading.Lock()

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._ssl else 'http'}://{host}:{self.port}"

    def start(self):
        with self._lock:
            self._server = _Server((self.host, self.port), self, self.app, self._ssl)
            self.port = self._server.server_address[1]
            # A short poll interval keeps stop() fast; the loop is idle in select() anyway.
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                            name=f"fakeaws-{self.name}", daemon=True)
            self._thread.start()

    def stop(self):
        with self._lock:
            if self._server is None:
                return
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def set_down(self, down):
        """Refuse connections (close the socket) or accept them again on the same port."""
        if down == self.down:
            return
        self.down = down
        if down:
            self.stop()
        else:
            self.start()
