"""The HTTP edge of the REST-API source: one Airflow deployment's API, its
version (v2 for Airflow 3, v1 for Airflow 2), its credentials and TLS, and
what each request cost. Every failure becomes an ``ApiError`` whose reason
is a label value of ``aerostat_airflow_api_errors_total``; a credential
never appears in one, nor in a log line."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aerostat.errors import AerostatError

# renew a JWT this long before it expires (Airflow 3's default lifetime is
# 24 h; a poll must never be the one that finds it expired)
TOKEN_RENEWAL_MARGIN = 300.0
# the largest page the API gives out by default ([api] maximum_page_limit)
PAGE_LIMIT = 100
# bytes of one response at most: a page of 100 task instances is ~100 KB
MAX_RESPONSE_BYTES = 32 << 20

# the reasons a request fails, the label values of the errors counter
UNREACHABLE, TIMEOUT, TLS, UNAUTHORIZED, FORBIDDEN = (
    "unreachable", "timeout", "tls", "unauthorized", "forbidden")
CLIENT_ERROR, SERVER_ERROR, MALFORMED = "client_error", "server_error", "malformed"
ERROR_REASONS = (UNREACHABLE, TIMEOUT, TLS, UNAUTHORIZED, FORBIDDEN, CLIENT_ERROR,
                 SERVER_ERROR, MALFORMED)

# what to do, per reason, said once when a deployment's API starts failing
ADVICE = {
    UNREACHABLE: "check --airflow.api-url and that the API server runs",
    TIMEOUT: "the API server is slow or unreachable; aerostat retries with back-off",
    TLS: "check the server's certificate, or give its CA with --airflow.api-ca-file",
    UNAUTHORIZED: "check the user and password or token given to aerostat",
    FORBIDDEN: "the user lacks read access to DAGs, runs, pools or import errors",
    CLIENT_ERROR: "the API refused a request; is the URL the API server's root?",
    SERVER_ERROR: "the API server failed; see its log",
    MALFORMED: "the answer was not Airflow's API; is the URL the API server's root?",
}


class ApiError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Cost:
    requests: int = 0
    bytes: int = 0
    seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the secret comes from: read when needed (a rotated file is
    picked up), never kept in a repr or a log."""

    username: str = ""
    password_file: str = ""
    token_file: str = ""

    def password(self) -> str:
        return _secret(self.password_file, "AEROSTAT_AIRFLOW_API_PASSWORD")

    def token(self) -> str:
        return _secret(self.token_file, "AEROSTAT_AIRFLOW_API_TOKEN")


def _secret(path: str, variable: str) -> str:
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise AerostatError(f"cannot read: {error.strerror}", source=path) from None
    return os.environ.get(variable, "")


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment's API, as the flags give it."""

    deployment: str
    url: str
    credentials: Credentials = Credentials()
    ca_file: str = ""
    insecure: bool = False
    timeout: float = 10.0

    def __repr__(self) -> str:  # the URL may carry user:password@
        return f"Target({self.deployment!r}, {redact_url(self.url)!r})"


def redact_url(url: str) -> str:
    """The URL without a password in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def tls_context(target: Target) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=target.ca_file or None)
    if target.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ApiClient:
    """Requests to one deployment's API. Learns the API's version on first
    use (``/api/v2/monitor/health`` answers on Airflow 3, ``/api/v1/health``
    on Airflow 2; both need no credentials) and logs in as the version
    wants: a JWT from ``POST /auth/token`` renewed before it expires (v2),
    basic auth (v1), or a bearer token from a file."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.base = target.url.rstrip("/")
        self._context = tls_context(target) if self.base.startswith("https:") else None
        self.version: int | None = None
        self._jwt = ""
        self._jwt_expires = 0.0
        self._cost = Cost()

    def take_cost(self) -> Cost:
        """What the requests since the last call cost."""
        cost, self._cost = self._cost, Cost()
        return cost

    # -- requests ----------------------------------------------------------

    def get(self, path: str, **query: object) -> Any:
        """GET /api/v<version>/<path>, as JSON; renews a token refused once."""
        version = self.api_version()
        url = f"{self.base}/api/v{version}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                [(key, item) for key, value in query.items()
                 for item in (value if isinstance(value, list | tuple) else [value])])
        try:
            return self._json("GET", url, self._auth_headers())
        except ApiError as error:
            if error.reason != UNAUTHORIZED or version != 2 or not self._jwt:
                raise
            self._jwt = ""  # expired early or revoked: one new token, one retry
            return self._json("GET", url, self._auth_headers())

    def api_version(self) -> int:
        if self.version is None:
            try:
                self._json("GET", f"{self.base}/api/v2/monitor/health", {})
                self.version = 2
            except ApiError as error:
                if error.reason != CLIENT_ERROR:
                    raise
                self._json("GET", f"{self.base}/api/v1/health", {})
                self.version = 1
        return self.version

    def _auth_headers(self) -> dict[str, str]:
        credentials = self.target.credentials
        if credentials.token_file or (not credentials.username and credentials.token()):
            return {"Authorization": f"Bearer {credentials.token()}"}
        if not credentials.username:
            return {}
        if self.version == 1:
            pair = f"{credentials.username}:{credentials.password()}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if not self._jwt or time.time() > self._jwt_expires - TOKEN_RENEWAL_MARGIN:
            self._log_in()
        return {"Authorization": f"Bearer {self._jwt}"}

    def _log_in(self) -> None:
        credentials = self.target.credentials
        body = json.dumps({"username": credentials.username,
                           "password": credentials.password()}).encode()
        answer = self._json("POST", f"{self.base}/auth/token",
                            {"Content-Type": "application/json"}, body)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ApiError(MALFORMED, "POST /auth/token gave no access_token")
        self._jwt = token
        self._jwt_expires = jwt_expiry(token) or time.time() + 3600.0

    def _json(self, method: str, url: str, headers: dict[str, str],
              body: bytes | None = None) -> Any:
        request = urllib.request.Request(
            url, body, {"Accept": "application/json", "User-Agent": "aerostat", **headers},
            method=method)
        shown = redact_url(url.split("?", 1)[0])
        started = time.monotonic()
        self._cost.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.target.timeout,
                                        context=self._context) as response:
                data = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            refused = _reason_of_status(error.code)
            raise ApiError(refused, f"{method} {shown}: HTTP {error.code}") from None
        except TimeoutError:
            raise ApiError(TIMEOUT, f"{method} {shown}: no answer within "
                           f"{self.target.timeout:g} s") from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, ssl.SSLError | ssl.CertificateError):
                raise ApiError(TLS, f"{method} {shown}: {reason}") from None
            if isinstance(reason, TimeoutError):
                raise ApiError(TIMEOUT, f"{method} {shown}: no answer within "
                               f"{self.target.timeout:g} s") from None
            raise ApiError(UNREACHABLE, f"{method} {shown}: {reason}") from None
        except (OSError, ValueError) as error:  # reset, a bad URL, an incomplete read
            raise ApiError(UNREACHABLE, f"{method} {shown}: {error}") from None
        finally:
            self._cost.seconds.append(time.monotonic() - started)
        self._cost.bytes += len(data)
        if len(data) > MAX_RESPONSE_BYTES:
            raise ApiError(MALFORMED, f"{method} {shown}: answer larger than "
                           f"{MAX_RESPONSE_BYTES >> 20} MiB")
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError(MALFORMED, f"{method} {shown}: not JSON") from None


def _reason_of_status(status: int) -> str:
    if status == 401:
        return UNAUTHORIZED
    if status == 403:
        return FORBIDDEN
    return SERVER_ERROR if status >= 500 else CLIENT_ERROR


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (Unix seconds), read without verifying:
    only to renew it in time; the API server checks it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expiry = claims.get("exp")
    except (IndexError, ValueError, binascii.Error, AttributeError):
        return None
    return float(expiry) if isinstance(expiry, int | float) else None


_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(.*)", re.DOTALL)


def _by_deployment(values: list[str], flag: str) -> dict[str | None, str]:
    """``[deployment=]value`` flags: None keys the value for every URL."""
    found: dict[str | None, str] = {}
    for value in values:
        named = _NAMED.fullmatch(value)
        key, text = (named.group(1), named.group(2)) if named else (None, value)
        if key in found:
            raise AerostatError(f"given twice for {key or 'every deployment'}", source=flag)
        found[key] = text
    return found


def targets_from_flags(
    urls: list[str],
    usernames: list[str],
    password_files: list[str],
    token_files: list[str],
    ca_file: str,
    insecure: bool,
    timeout: float,
    default_deployment: str,
) -> tuple[Target, ...]:
    """The deployments' APIs the ``--airflow.api-*`` flags name; a mistake
    raises an AerostatError naming the flag (never the secret)."""
    by_url = _by_deployment(urls, "--airflow.api-url")
    users = _by_deployment(usernames, "--airflow.api-username")
    passwords = _by_deployment(password_files, "--airflow.api-password-file")
    tokens = _by_deployment(token_files, "--airflow.api-token-file")
    deployments = {name or default_deployment for name in by_url}
    for flag, given in (("--airflow.api-username", users), ("--airflow.api-password-file",
                        passwords), ("--airflow.api-token-file", tokens)):
        unknown = {name for name in given if name is not None} - deployments
        if unknown:
            raise AerostatError(f"names a deployment without --airflow.api-url: "
                                f"{', '.join(sorted(unknown))}", source=flag)
    if ca_file and not Path(ca_file).is_file():
        raise AerostatError("no such file", source="--airflow.api-ca-file")
    targets = []
    for name, url in by_url.items():
        deployment = name or default_deployment
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AerostatError(f"not an http(s) URL: {redact_url(url)!r}",
                                source="--airflow.api-url")
        credentials = Credentials(
            users.get(name, users.get(None, "")),
            passwords.get(name, passwords.get(None, "")),
            tokens.get(name, tokens.get(None, "")),
        )
        if credentials.username and not credentials.password_file and not os.environ.get(
                "AEROSTAT_AIRFLOW_API_PASSWORD"):
            raise AerostatError(
                f"{deployment}: a user needs --airflow.api-password-file (or the "
                "AEROSTAT_AIRFLOW_API_PASSWORD environment variable)",
                source="--airflow.api-username")
        for path, flag in ((credentials.password_file, "--airflow.api-password-file"),
                           (credentials.token_file, "--airflow.api-token-file")):
            if path and not os.access(path, os.R_OK):
                raise AerostatError(f"cannot read {path}", source=flag)
        targets.append(Target(deployment, url, credentials, ca_file, insecure, timeout))
    if len({target.deployment for target in targets}) < len(targets):
        raise AerostatError("two URLs for one deployment", source="--airflow.api-url")
    return tuple(targets)
