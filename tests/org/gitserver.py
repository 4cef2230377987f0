"""Real git repositories served over smart HTTP(S) on 127.0.0.1, for the network tests.

:class:`GitServer` is a threaded :mod:`http.server` that runs ``git http-backend`` as a
CGI program for every request (the protocol git's own test suite and most hosts speak):
the request's headers become ``HTTP_*`` variables, its body is streamed into the
program, the program's CGI headers (``Status:``, ``Content-Type:``) are parsed and its
body is streamed back chunked (HTTP/1.1, keep-alive). It records every request's method,
path and ``Authorization`` header, and can

* require a token (``token=``): a request without ``Authorization: Basic
  base64(x-access-token:TOKEN)`` is answered 401 with ``WWW-Authenticate``, as GitHub
  answers a private repository;
* serve HTTPS (``tls=``: a :class:`SelfSigned` certificate for 127.0.0.1);
* die in the middle of a pack (``die_after_bytes=``): the connection is cut after that
  many bytes of an ``upload-pack`` response's body, without the chunked terminator;
  with ``stall=True`` it is held open instead (``stalled`` is set) until ``release`` is
  set, then cut; only the first ``cuts`` such responses (default: all).

:func:`self_signed` makes the certificate with the ``cryptography`` package when it is
installed, else with the ``openssl`` command.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import os
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HTTP_BACKEND = "git-http-backend"


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    status: int = 0


def basic_auth(token: str) -> str:
    """The header value diffrisk sends for a token (GitHub's form)."""
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def http_backend() -> str:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(exec_path) / HTTP_BACKEND)


class GitServer:
    """Serve the bare repositories under ``project_root`` (``URL/<path under root>``).

    A context manager: started on entry (a free port on 127.0.0.1), stopped on exit."""

    def __init__(
        self,
        project_root: Path,
        *,
        tls: SelfSigned | None = None,
        token: str | None = None,
        die_after_bytes: int | None = None,
        stall: bool = False,
        cuts: int | None = None,
    ) -> None:
        self.project_root = project_root
        self.tls = tls
        self.token = token
        self.die_after_bytes = die_after_bytes
        self.stall = stall
        self.cuts = cuts
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.backend = http_backend()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def url(self, repo: str) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{repo}"

    def __enter__(self) -> GitServer:
        server = self
        context = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert, self.tls.key)

        class Httpd(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def finish_request(self, request: Any, client_address: Any) -> None:
                if context is None:
                    super().finish_request(request, client_address)
                    return
                try:  # the TLS handshake in the request's thread
                    tls = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                try:  # (wrapping detached ``request``: closing it closes nothing)
                    super().finish_request(tls, client_address)
                finally:
                    tls.close()

        class Handler(_Handler):
            owner = server

        self._httpd = Httpd(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def authorizations(self) -> list[str | None]:
        with self.lock:
            return [s.authorization for s in self.seen]


class _Handler(BaseHTTPRequestHandler):
    owner: GitServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read ``seen``

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        srv = self.owner
        auth = self.headers.get("Authorization")
        seen = Seen(self.command, self.path, auth)
        with srv.lock:
            srv.seen.append(seen)
        body = self._request_body()
        if srv.token is not None and auth != basic_auth(srv.token):
            seen.status = 401
            msg = b"authentication required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="diffrisk test"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        parts = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(srv.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": "diffrisk-test",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(parts.path),
            "QUERY_STRING": parts.query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name not in ("HTTP_AUTHORIZATION", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                env[name] = value  # Git-Protocol (v2), Content-Encoding (gzip), ...
        proc = subprocess.Popen(
            [srv.backend],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        feeder = threading.Thread(target=_feed, args=(proc.stdin, body), daemon=True)
        feeder.start()
        try:
            status, headers = _cgi_headers(proc.stdout)
            seen.status = status
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            die = srv.die_after_bytes if self.path.endswith("git-upload-pack") else None
            sent = 0
            while chunk := proc.stdout.read1(65536):
                if die is not None and sent + len(chunk) > die and not self._cut_one():
                    die = None  # the cuts asked for were made: serve the rest whole
                if die is not None and sent + len(chunk) > die:
                    self._chunk(chunk[: max(die - sent, 0)])
                    self.wfile.flush()
                    if srv.stall:
                        srv.stalled.set()
                        srv.release.wait(timeout=120)
                    self.close_connection = True
                    with contextlib.suppress(OSError):  # cut: no terminating chunk
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._chunk(chunk)
                sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        finally:
            feeder.join(timeout=10)
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def _cut_one(self) -> bool:
        srv = self.owner
        with srv.lock:
            if srv.cuts is None:
                return True
            srv.cuts -= 1
            return srv.cuts >= 0

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _request_body(self) -> bytes:
        """The whole request body (git sends Content-Length, or chunks when it is large)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


def _feed(stdin: Any, body: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        stdin.write(body)
    with contextlib.suppress(OSError):
        stdin.close()


def _cgi_headers(stdout: Any) -> tuple[int, list[tuple[str, str]]]:
    """The CGI program's header lines, up to the blank line: its status (``Status:``,
    else 200) and the rest."""
    status = 200
    headers = []
    while True:
        line = stdout.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers.append((key.strip(), value.strip()))


def self_signed(directory: Path) -> SelfSigned:
    """A certificate for 127.0.0.1 and localhost, signed by itself (its own CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            raise RuntimeError(
                "neither the cryptography package nor the openssl command is available "
                "to make a test certificate: pip install cryptography"
            ) from None
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
    return SelfSigned(cert, key)


def _with_cryptography(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass
class Stall:
    """A port that accepts connections and never answers (a hung server): ``url``."""

    sock: socket.socket = field(default_factory=socket.socket)

    def __enter__(self) -> Stall:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/{repo}"


@dataclass
class Unanswered:
    """A port whose connections are never even accepted by the kernel (a host that drops
    packets, as a firewall does): its listen queue is full, so a new connection's SYN is
    dropped and the client waits in ``connect``. ``url``."""

    sock: socket.socket = field(default_factory=socket.socket)
    filler: list[socket.socket] = field(default_factory=list)

    def __enter__(self) -> Unanswered:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        for _ in range(8):  # fill the queue until a connection is no longer accepted
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(self.sock.getsockname())
            except OSError:
                c.close()
                return self
            self.filler.append(c)
        raise RuntimeError("the listen queue never filled (not Linux?)")

    def __exit__(self, *exc: object) -> None:
        for c in self.filler:
            c.close()
        self.sock.close()

    def url(self, repo: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/{repo}"


def closed_port_url(repo: str) -> str:
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{repo}"
