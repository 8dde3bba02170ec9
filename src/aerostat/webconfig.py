"""TLS and basic authentication for aerostat's HTTP listeners, from the web
configuration file that Prometheus exporters share (exporter-toolkit's
``--web.config.file``): ``tls_server_config``, ``http_server_config`` and
``basic_auth_users`` with bcrypt hashes, and ``rate_limit``.

``parse_web_config(text, source)`` is pure: it checks the file and names
file, line, column and key on a mistake. ``WebGuard`` is the I/O around it,
for any listener (the metrics port, and any other HTTP input): it secures
an accepted socket (the TLS handshake, in the connection's own thread),
admits or refuses a request by its Authorization header, and picks up a
changed file, certificate or key at the next connection or request, as
exporter-toolkit does, so that certificates rotate without a restart."""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import logging
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import bcrypt
import yaml
from yaml.nodes import Node

from aerostat.errors import AerostatError
from aerostat.mapper.yamlnodes import NodeReader, is_null, syntax_error, unreadable

log = logging.getLogger("aerostat.http")

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
    "client_allowed_sans", "min_version", "max_version", "cipher_suites",
    "prefer_server_cipher_suites", "curve_preferences",
)
_HTTP_KEYS = ("http2", "headers")
_RATE_KEYS = ("interval", "burst")

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# client_auth_type, Go's tls.ClientAuthType names → (ask for a certificate,
# require one, verify it against client_ca); RequireClientCert is the old
# spelling exporter-toolkit still takes
CLIENT_AUTH = {
    "NoClientCert": (False, False, False),
    "RequestClientCert": (True, False, False),
    "RequireAnyClientCert": (True, True, False),
    "RequireClientCert": (True, True, False),
    "VerifyClientCertIfGiven": (True, False, True),
    "RequireAndVerifyClientCert": (True, True, True),
}

# cipher_suites: Go's (IANA) names of the TLS 1.2 suites Go offers → OpenSSL's
# names. TLS 1.3's three suites are always on, in Go as in OpenSSL: named,
# they are accepted and change nothing.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")

# http_server_config.headers: the headers exporter-toolkit lets a file set,
# with the values it allows (None: any)
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# a bcrypt hash: $2a$, $2b$, $2x$ or $2y$, two-digit cost, 22 + 31 characters
_BCRYPT = re.compile(r"\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None
    key: str | None = field(default=None, repr=False)  # a secret
    client_ca_file: str | None = None
    client_ca: str | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """exporter-toolkit's test: any certificate, key, CA or client
        policy set means TLS (and then the certificate and key must be)."""
        return any((self.cert_file, self.cert, self.key_file, self.key, self.client_ca_file,
                    self.client_ca, self.client_auth_type != "NoClientCert"))

    def files(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A checked web configuration file; relative paths in it are joined to
    the file's directory already."""

    source: str = "<web config>"
    tls: TlsSettings = field(default_factory=TlsSettings)
    http2: bool = True  # deviation: taken, and without effect: aerostat serves HTTP/1.x
    headers: tuple[tuple[str, str], ...] = ()
    users: dict[str, bytes] = field(default_factory=dict, repr=False)  # name → bcrypt hash
    rate_interval: float = 0.0  # seconds between requests; 0: no limit
    rate_burst: int = 0


def parse_web_config(text: str, source: str = "<web config>") -> WebConfig:
    """Parse and check a web configuration file; raise AerostatError naming
    ``source``, the line and column, and the key at fault. Nothing is read
    from disk (build_tls_context does that)."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise unreadable(exc, text, source) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return WebConfig(source)
        reader = NodeReader(source, loader)
        top = reader.fields(root, None, _TOP_KEYS)
        base = os.path.dirname(source)
        tls = _tls(reader, top.get("tls_server_config"), base)
        http2, headers = True, tuple[tuple[str, str], ...]()
        if "http_server_config" in top:
            http2, headers = _http(reader, top["http_server_config"])
        users = _users(reader, top.get("basic_auth_users"))
        interval, burst = 0.0, 0
        if "rate_limit" in top:
            entries = reader.fields(top["rate_limit"], "rate_limit", _RATE_KEYS)
            if "interval" in entries:
                interval = reader.duration(entries["interval"], "rate_limit.interval")
            if "burst" in entries:
                burst = reader.count(entries["burst"], "rate_limit.burst")
        return WebConfig(source, tls, http2, headers, users, interval, burst)
    except yaml.reader.ReaderError as exc:
        raise unreadable(exc, text, source) from None
    except yaml.YAMLError as exc:
        raise syntax_error(exc, source) from None
    finally:
        loader.dispose()


def _tls(reader: NodeReader, node: Node | None, base: str) -> TlsSettings:
    if node is None or is_null(node):
        return TlsSettings()
    where = "tls_server_config"
    entries = reader.fields(node, where, _TLS_KEYS)
    values: dict[str, object] = {}

    def text(key: str) -> str | None:
        found = entries.get(key)
        return None if found is None else reader.string(found, f"{where}.{key}") or None

    def strings(key: str, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        out = []
        for item in reader.items(entries[key], f"{where}.{key}"):
            value = reader.string(item, f"{where}.{key}") or ""
            if allowed is not None and value not in allowed:
                reader.fail(item, f"{where}.{key}",
                            f"unknown {key.removesuffix('s').replace('_', ' ')} '{value}'; "
                            f"known: {', '.join(allowed)}")
            out.append(value)
        return tuple(out)

    for key in ("cert_file", "key_file", "client_ca_file"):
        path = text(key)
        if path is not None:
            values[key] = os.path.join(base, path)  # an absolute path stays as it is
    for key in ("cert", "key", "client_ca"):
        values[key] = text(key)
    if "client_auth_type" in entries:
        policy = text("client_auth_type") or "NoClientCert"
        if policy not in CLIENT_AUTH:
            reader.fail(entries["client_auth_type"], f"{where}.client_auth_type",
                        f"invalid client_auth_type '{policy}'; known: {', '.join(CLIENT_AUTH)}")
        values["client_auth_type"] = policy
    for key in ("min_version", "max_version"):
        if key in entries:
            version = text(key) or ""
            if version not in TLS_VERSIONS:
                reader.fail(entries[key], f"{where}.{key}",
                            f"unknown TLS version '{version}'; known: {', '.join(TLS_VERSIONS)}")
            values[key] = version
    if "cipher_suites" in entries:
        values["cipher_suites"] = strings("cipher_suites", tuple(CIPHER_SUITES))
    if "curve_preferences" in entries:
        values["curve_preferences"] = strings("curve_preferences", CURVES)
    if "client_allowed_sans" in entries:
        values["client_allowed_sans"] = strings("client_allowed_sans", None)
    if "prefer_server_cipher_suites" in entries:
        values["prefer_server_cipher_suites"] = reader.boolean(
            entries["prefer_server_cipher_suites"], f"{where}.prefer_server_cipher_suites")
    settings = TlsSettings(**values)  # type: ignore[arg-type]

    # the checks exporter-toolkit makes before serving, located
    if not settings.enabled:
        return settings
    if settings.cert_file is None and settings.cert is None:
        reader.fail(node, where, "TLS needs a certificate: set cert_file (or cert)")
    if settings.key_file is None and settings.key is None:
        reader.fail(node, where, "TLS needs a private key: set key_file (or key)")
    for one, other in (("cert", "cert_file"), ("key", "key_file"), ("client_ca", "client_ca_file")):
        if one in entries and other in entries:
            reader.fail(entries[one], f"{where}.{one}", f"set {one} or {other}, not both")
    if TLS_VERSIONS[settings.min_version] > TLS_VERSIONS[settings.max_version]:
        reader.fail(entries.get("min_version", node), f"{where}.min_version",
                    f"min_version {settings.min_version} is above max_version "
                    f"{settings.max_version}")
    asks = CLIENT_AUTH[settings.client_auth_type][0]
    has_ca = settings.client_ca_file is not None or settings.client_ca is not None
    if has_ca and not asks:
        reader.fail(entries.get("client_ca_file", entries.get("client_ca", node)),
                    f"{where}.client_ca_file",
                    "a client CA is set but client_auth_type asks for no client certificate "
                    "(set it to RequireAndVerifyClientCert)")
    if asks and not has_ca:
        # deviation: Python's ssl verifies every client certificate it asks
        # for, so the policies that take one unverified need a CA as well
        reader.fail(entries["client_auth_type"], f"{where}.client_auth_type",
                    f"{settings.client_auth_type} needs client_ca_file: aerostat verifies "
                    "every client certificate it asks for")
    if settings.client_allowed_sans is not None and not CLIENT_AUTH[
            settings.client_auth_type][1]:
        reader.fail(entries["client_allowed_sans"], f"{where}.client_allowed_sans",
                    "client_allowed_sans needs client_auth_type RequireAnyClientCert or "
                    "RequireAndVerifyClientCert")
    return settings


def _http(reader: NodeReader, node: Node) -> tuple[bool, tuple[tuple[str, str], ...]]:
    entries = reader.fields(node, "http_server_config", _HTTP_KEYS)
    http2 = True
    if "http2" in entries:
        http2 = reader.boolean(entries["http2"], "http_server_config.http2")
    headers: list[tuple[str, str]] = []
    if "headers" in entries:
        for name, key_node, value_node in reader.pairs(entries["headers"],
                                                       "http_server_config.headers"):
            where = f"http_server_config.headers.{name}"
            if name not in HEADERS:
                reader.fail(key_node, where,
                            f"header '{name}' cannot be set; known: {', '.join(HEADERS)}")
            value = reader.string(value_node, where) or ""
            allowed = HEADERS[name]
            if allowed is not None and value not in allowed:
                reader.fail(value_node, where,
                            f"invalid value '{value}'; expected {' or '.join(allowed)}")
            if value:  # blank: unset
                headers.append((name, value))
    return http2, tuple(headers)


def _users(reader: NodeReader, node: Node | None) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    if node is None:
        return users
    for name, _, value_node in reader.pairs(node, "basic_auth_users"):
        where = f"basic_auth_users.{name}"
        hashed = reader.string(value_node, where) or ""
        found = _BCRYPT.fullmatch(hashed)
        # the hash itself is never repeated in a message: it is a secret's
        # stand-in, and messages end up in logs
        if found is None:
            reader.fail(value_node, where,
                        "not a bcrypt hash (e.g. from htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        cost = int(found.group(1))
        if not 4 <= cost <= 31:
            reader.fail(value_node, where, f"bcrypt cost {cost} is outside 4 to 31")
        users[name] = hashed.encode("ascii")
    return users


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read a web configuration file, parse it, and check that its
    certificate, key and CA load (as exporter-toolkit does at start)."""
    config = _read(os.fspath(path))
    if config.tls.enabled:
        build_tls_context(config)
    return config


def _read(source: str) -> WebConfig:
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise AerostatError(f"cannot read web config file: {exc.strerror}",
                            source=source) from None
    except UnicodeDecodeError as exc:
        raise AerostatError(f"web config file is not UTF-8: {exc.reason}",
                            source=source) from None
    return parse_web_config(text, source)


def build_tls_context(config: WebConfig) -> ssl.SSLContext:
    """The server's SSLContext; AerostatError naming the file and key when
    a certificate, key or CA does not load. The messages never quote a key."""
    tls, source = config.tls, config.source
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    named = [CIPHER_SUITES[name] for name in tls.cipher_suites if CIPHER_SUITES[name]]
    if named:
        try:
            context.set_ciphers(":".join(named))
        except ssl.SSLError:
            raise AerostatError("none of these cipher suites is available in this OpenSSL",
                                source=source, field="tls_server_config.cipher_suites") from None
    # deviation: curve_preferences is checked but not applied; OpenSSL's own
    # order of groups (X25519, P-256, P-384, P-521 among them) is kept
    _load_certificate(context, tls, source)
    asks, requires, _ = CLIENT_AUTH[tls.client_auth_type]
    if asks:  # with a CA: the parser makes sure of it
        context.verify_mode = ssl.CERT_REQUIRED if requires else ssl.CERT_OPTIONAL
        field_name = "client_ca_file" if tls.client_ca_file else "client_ca"
        try:
            if tls.client_ca_file is not None:
                context.load_verify_locations(cafile=tls.client_ca_file)
            else:
                context.load_verify_locations(cadata=tls.client_ca)
        except (OSError, ssl.SSLError) as error:
            raise AerostatError(f"cannot load the client CA: {_why(error)}", source=source,
                                field=f"tls_server_config.{field_name}") from None
    return context


def _load_certificate(context: ssl.SSLContext, tls: TlsSettings, source: str) -> None:
    field_name = "cert_file" if tls.cert_file else "cert"
    if tls.cert_file is not None and tls.key_file is not None:
        for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
            if not os.path.isfile(path):
                raise AerostatError(f"cannot read {path}: no such file", source=source,
                                    field=f"tls_server_config.{key}")
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as error:
            raise AerostatError(f"cannot load the certificate and key: {_why(error)}",
                                source=source, field=f"tls_server_config.{field_name}") from None
        return
    # inline PEM: OpenSSL reads a chain only from files, so the PEM goes to
    # a private file (0600, in a private directory) for the moment it loads
    with tempfile.TemporaryDirectory(prefix="aerostat-tls-") as private:
        paths: list[str] = []
        for name, inline, given in (("cert.pem", tls.cert, tls.cert_file),
                                   ("key.pem", tls.key, tls.key_file)):
            if given is None:
                given = os.path.join(private, name)
                descriptor = os.open(given, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(inline or "")
            paths.append(given)
        try:
            context.load_cert_chain(paths[0], paths[1])
        except (OSError, ssl.SSLError) as error:
            raise AerostatError(f"cannot load the certificate and key: {_why(error)}",
                                source=source, field=f"tls_server_config.{field_name}") from None


def _why(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason.lower().replace("_", " ")
    return error.strerror or str(error)


# -- at run time ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a refused request is answered: status, body, extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


# deviation: upstream sends a bare "Basic"; RFC 7617 wants a realm
UNAUTHORIZED = Refusal(401, b"Unauthorized\n", (("WWW-Authenticate", 'Basic realm="aerostat"'),))
TOO_MANY = Refusal(429, b"Too Many Requests\n")
BROKEN = Refusal(500, b"Internal Server Error: the web config file does not load; see the log\n")

_CHECKS_REMEMBERED = 256


class _Verdicts:
    """Bounded memory of bcrypt checks: a check costs tens of milliseconds
    (cost 10) and a scraper sends the same credentials every time.
    Keyed by SHA-256 of user, stored hash and password, never the password
    itself; the stored hash is in the key, so a changed file counts anew.
    Wrong passwords are remembered too, so that a scraper with stale
    credentials cannot make aerostat spend a bcrypt check per request."""

    def __init__(self, size: int = _CHECKS_REMEMBERED) -> None:
        self._size = size
        self._known: collections.OrderedDict[bytes, bool] = collections.OrderedDict()
        self._lock = threading.Lock()
        # one bcrypt check at a time, as exporter-toolkit: a burst of
        # requests cannot take every core from the StatsD reader
        self._bcrypt = threading.Lock()

    def check(self, user: bytes, stored: bytes, password: bytes) -> bool:
        key = hashlib.sha256(b"\0".join((
            hashlib.sha256(user).digest(), stored, hashlib.sha256(password).digest(),
        ))).digest()
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
                return known
        with self._bcrypt:
            try:
                ok = bcrypt.checkpw(password, stored)
            except ValueError:  # longer than bcrypt's 72 bytes: as Go's, no match
                ok = False
        with self._lock:
            self._known[key] = ok
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        return ok


_decoy: bytes | None = None


def _decoy_hash() -> bytes:
    """A hash that no password given matches, checked for an unknown user so
    that the answer takes as long as for a known one (no user enumeration
    by timing)."""
    global _decoy
    if _decoy is None:
        _decoy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(10))
    return _decoy


def basic_credentials(authorization: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of a ``Basic`` Authorization header, or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class WebGuard:
    """A listener's TLS and basic auth, from a web config file that is read
    again whenever it, or a file it names, changes (checked at most once a
    second; deviation: upstream parses it on every request and handshake).
    A file that stops loading refuses every request (500) and handshake
    until it loads again: the guard never falls open."""

    _RECHECK_SECONDS = 1.0

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._config = load_web_config(path)
        self.tls = self._config.tls.enabled
        self._context = build_tls_context(self._config) if self.tls else None
        self._stamp = self._stamps(self._config)
        self._checked = clock()
        self._broken: str | None = None
        self._lock = threading.Lock()
        self._verdicts = _Verdicts()
        self._tokens = float(max(1, self._config.rate_burst))
        self._refilled = clock()

    @property
    def config(self) -> WebConfig:
        return self._current()[0]

    def _stamps(self, config: WebConfig) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.path, *config.tls.files()):
            try:
                status = os.stat(path)
                stamps.append((status.st_mtime_ns, status.st_size, status.st_ino))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _current(self) -> tuple[WebConfig, ssl.SSLContext | None, str | None]:
        with self._lock:
            now = self._clock()
            if now - self._checked >= self._RECHECK_SECONDS:
                self._checked = now
                stamp = self._stamps(self._config)
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload()
            return self._config, self._context, self._broken

    def _reload(self) -> None:
        try:
            config = _read(self.path)
            if config.tls.enabled != self.tls:
                raise AerostatError("TLS cannot be switched on or off without a restart",
                                    source=self.path, field="tls_server_config")
            context = build_tls_context(config) if self.tls else None
        except AerostatError as error:
            if self._broken != str(error):
                log.error("Web config does not load; refusing requests until it does: %s",
                          error)
            self._broken = str(error)
            return
        if self._broken is not None:
            log.info("Web config loads again", extra={"fields": {"file": self.path}})
        self._config, self._context, self._broken = config, context, None
        self._stamp = self._stamps(config)
        log.info("Web config reloaded", extra={"fields": {"file": self.path}})

    def secure(self, sock: socket.socket, timeout: float | None) -> socket.socket | None:
        """The connection to serve: ``sock`` itself without TLS, else its
        TLS side after the handshake; None when there is nothing to serve
        (the socket is then closed). Call from the connection's thread."""
        if not self.tls:
            return sock
        _, context, broken = self._current()
        try:
            sock.settimeout(timeout)
            if context is None or broken is not None:
                raise ConnectionAbortedError("web config does not load")
            first = sock.recv(1, socket.MSG_PEEK)
            if first and first != b"\x16":  # not a TLS handshake record
                if first.isalpha():  # plain HTTP: say so, as Go's servers do
                    # the request read first: closing with unread bytes would
                    # reset the connection before the client reads the answer
                    sock.recv(65536)
                    sock.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                 b"Connection: close\r\n\r\n"
                                 b"Client sent an HTTP request to an HTTPS server.\n")
                    sock.shutdown(socket.SHUT_WR)
                raise ConnectionAbortedError("not TLS")
            secured = context.wrap_socket(sock, server_side=True)
            self._check_sans(secured)
            return secured
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            # a scanner, a plain-HTTP client, a bad client certificate: the
            # client's problem, told at debug level only
            log.debug("TLS handshake failed: %s", error)
            sock.close()
            return None

    def _check_sans(self, secured: ssl.SSLSocket) -> None:
        wanted = self.config.tls.client_allowed_sans
        if wanted is None:
            return
        certificate = secured.getpeercert() or {}
        names = {str(pair[1]) for pair in certificate.get("subjectAltName", ())}
        if not names & set(wanted):
            secured.close()
            raise ConnectionAbortedError("client certificate has none of client_allowed_sans")

    def admit(self, authorization: str | None) -> Refusal | None:
        """None when the request may be served, else how to refuse it."""
        config, _, broken = self._current()
        if broken is not None:
            return BROKEN
        if config.rate_interval > 0 and not self._take_token(config):
            return TOO_MANY
        if not config.users:
            return None
        credentials = basic_credentials(authorization)
        if credentials is None:
            return UNAUTHORIZED
        user, password = credentials
        stored = config.users.get(user.decode("utf-8", "surrogateescape"))
        ok = self._verdicts.check(user, stored or _decoy_hash(), password)
        return None if ok and stored is not None else UNAUTHORIZED

    def _take_token(self, config: WebConfig) -> bool:
        """A token bucket: one request per interval, ``burst`` at once.
        deviation: ``burst: 0`` allows one (Go's limiter would refuse all)."""
        with self._lock:
            now = self._clock()
            capacity = max(1, config.rate_burst)
            self._tokens = min(capacity, self._tokens + (now - self._refilled)
                               / config.rate_interval)
            self._refilled = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def headers(self) -> tuple[tuple[str, str], ...]:
        return self._current()[0].headers
