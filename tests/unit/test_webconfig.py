"""--web.config.file: the parser names file, line, column and key for every
mistake (exporter-toolkit refuses the same files), the loader checks the
certificate and key, and the guard admits, refuses and remembers checks."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest

from aerostat.errors import AerostatError
from aerostat.webconfig import (
    CIPHER_SUITES,
    UNAUTHORIZED,
    WebGuard,
    basic_credentials,
    build_tls_context,
    load_web_config,
    parse_web_config,
)
from pki import make_pki

# cost 4: the lowest bcrypt takes, so that the tests do not wait on it
HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("tls_server_config: {}\nbasic_auth_user: {}\n", "web.yml:2:1: basic_auth_user:",
         "did you mean 'basic_auth_users'"),
        (TLS + "  cert_fil: x\n", "web.yml:4:3: tls_server_config.cert_fil:", "unknown key"),
        ("tls_server_config:\n  key_file: server.key\n", "web.yml:2:3: tls_server_config:",
         "set cert_file"),
        ("tls_server_config:\n  cert_file: server.crt\n", "web.yml:2:3: tls_server_config:",
         "set key_file"),
        ("basic_auth_users:\n  alice: s3cret\n", "web.yml:2:10: basic_auth_users.alice:",
         "not a bcrypt hash"),
        ("basic_auth_users:\n  alice: $2y$03$" + "a" * 53 + "\n",
         "web.yml:2:10: basic_auth_users.alice:", "cost 3"),
        (TLS + "  min_version: TLS1.2\n", "web.yml:4:16: tls_server_config.min_version:",
         "unknown TLS version 'TLS1.2'; known: TLS10, TLS11, TLS12, TLS13"),
        (TLS + "  min_version: TLS13\n  max_version: TLS12\n",
         "web.yml:4:16: tls_server_config.min_version:", "above max_version"),
        (TLS + "  client_auth_type: VerifyAlways\n",
         "web.yml:4:21: tls_server_config.client_auth_type:", "invalid client_auth_type"),
        (TLS + "  client_ca_file: ca.crt\n", "web.yml:4:19: tls_server_config.client_ca_file:",
         "asks for no client certificate"),
        (TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
         "web.yml:4:21: tls_server_config.client_auth_type:", "needs client_ca_file"),
        # deviation S10: Python's ssl verifies every client certificate it asks for
        (TLS + "  client_auth_type: RequireAnyClientCert\n",
         "web.yml:4:21: tls_server_config.client_auth_type:", "needs client_ca_file"),
        (TLS + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
         "web.yml:4:19: tls_server_config.cipher_suites:", "unknown cipher suite"),
        (TLS + "  curve_preferences: [CurveP224]\n",
         "web.yml:4:23: tls_server_config.curve_preferences:", "unknown curve preference"),
        (TLS + "  cert: inline\n", "web.yml:4:9: tls_server_config.cert:", "not both"),
        ("http_server_config:\n  headers:\n    X-Powered-By: me\n",
         "web.yml:3:5: http_server_config.headers.X-Powered-By:", "cannot be set"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
         "web.yml:3:22: http_server_config.headers.X-Frame-Options:", "deny or sameorigin"),
        ("http_server_config:\n  http2: maybe\n", "web.yml:2:10: http_server_config.http2:",
         "true or false"),
        ("rate_limit:\n  interval: soon\n", "web.yml:2:13: rate_limit.interval:",
         "invalid duration"),
        ("tls_server_config:\n  cert_file: [a\n", "web.yml:3:1:", "invalid YAML"),
    ],
    ids=["unknown-top-key", "unknown-tls-key", "missing-cert", "missing-key", "bad-hash",
         "low-cost", "bad-min-version", "min-above-max", "bad-client-auth", "ca-without-policy",
         "verify-without-ca", "any-cert-without-ca", "bad-cipher", "bad-curve", "cert-twice",
         "header-not-allowed", "header-bad-value", "http2-not-bool", "bad-interval", "syntax"],
)
def test_a_mistake_is_named_with_file_line_and_key(text: str, where: str, message: str) -> None:
    with pytest.raises(AerostatError) as caught:
        parse_web_config(text, "web.yml")
    assert str(caught.value).startswith(where), str(caught.value)
    assert message in str(caught.value)


def test_a_bad_hash_is_never_repeated() -> None:
    with pytest.raises(AerostatError) as caught:
        parse_web_config("basic_auth_users:\n  alice: hunter2-not-hashed\n", "web.yml")
    assert "hunter2" not in str(caught.value)


def test_a_good_file_reads_as_exporter_toolkit_would() -> None:
    config = parse_web_config(
        TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: /etc/ca.crt\n"
        "  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        "    Content-Security-Policy: ''\n"
        f"basic_auth_users:\n  alice: {HASH}\n  bob: {HASH}\n",
        "/srv/conf/web.yml",
    )
    # relative paths are the file's directory's, absolute ones stay
    assert config.tls.cert_file == "/srv/conf/server.crt"
    assert config.tls.client_ca_file == "/etc/ca.crt"
    assert config.tls.enabled and config.tls.min_version == "TLS13"
    assert config.headers == (("X-Frame-Options", "deny"),)  # a blank header is unset
    assert sorted(config.users) == ["alice", "bob"]


@pytest.mark.parametrize("text", ["", "basic_auth_users:\n", "tls_server_config:\n"],
                         ids=["empty", "no-users", "no-tls"])
def test_an_empty_file_or_section_turns_nothing_on(text: str) -> None:
    config = parse_web_config(text, "web.yml")
    assert not config.tls.enabled and not config.users


def test_every_cipher_suite_name_is_one_openssl_knows() -> None:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for name, openssl in CIPHER_SUITES.items():
        if openssl:
            context.set_ciphers(openssl)  # raises SSLError for an unknown one
            assert [found["name"] for found in context.get_ciphers()
                    if found["protocol"] != "TLSv1.3"] == [openssl], name


def test_the_loader_checks_the_files_it_names(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n")
    with pytest.raises(AerostatError, match=r"web.yml: tls_server_config.cert_file: cannot read"):
        load_web_config(web)
    # a key of another certificate: OpenSSL's reason, and no key material
    web.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n")
    with pytest.raises(AerostatError, match="key values mismatch") as caught:
        load_web_config(web)
    assert "PRIVATE KEY" not in str(caught.value)
    with pytest.raises(AerostatError, match="cannot read web config file"):
        load_web_config(tmp_path / "nowhere.yml")
    # inline PEM loads as the files do
    inline = parse_web_config(
        "tls_server_config:\n  cert: |\n" + _indent(pki.server_cert.read_text())
        + "  key: |\n" + _indent(pki.server_key.read_text()), str(web))
    build_tls_context(inline)


def _indent(pem: str) -> str:
    return "".join(f"    {line}\n" for line in pem.splitlines())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("alice", "pa:ss"), (b"alice", b"pa:ss")),  # the first colon splits
        ("basic " + base64.b64encode(b"alice:").decode(), (b"alice", b"")),
        ("Bearer abc", None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        (None, None),
    ],
    ids=["colon-in-password", "empty-password", "bearer", "not-base64", "no-colon", "absent"],
)
def test_basic_credentials(header: str | None, expected: tuple[bytes, bytes] | None) -> None:
    assert basic_credentials(header) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_guard_admits_the_right_password_only(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    guard = WebGuard(str(web))
    checks: list[bytes] = []
    real = bcrypt.checkpw

    def counted(password: bytes, hashed: bytes) -> bool:
        checks.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counted)
    assert guard.admit(None) is UNAUTHORIZED
    assert UNAUTHORIZED.status == 401
    assert ("WWW-Authenticate", 'Basic realm="aerostat"') in UNAUTHORIZED.headers
    assert guard.admit(basic("alice", "wrong")) is UNAUTHORIZED
    assert guard.admit(basic("mallory", "s3cret")) is UNAUTHORIZED  # checked against a decoy
    assert guard.admit(basic("alice", "s3cret")) is None
    assert len(checks) == 3
    # remembered: a scraper's next requests, right or wrong, cost no bcrypt check
    for _ in range(5):
        assert guard.admit(basic("alice", "s3cret")) is None
        assert guard.admit(basic("alice", "wrong")) is UNAUTHORIZED
    assert len(checks) == 3


def test_the_remembered_checks_are_bounded(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    guard = WebGuard(str(web))
    for attempt in range(300):
        guard.admit(basic("alice", f"guess{attempt}"))
    assert len(guard._verdicts._known) == 256


def test_a_changed_file_is_picked_up_and_a_broken_one_refuses(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    clock = Clock()
    guard = WebGuard(str(web), clock)
    assert guard.admit(basic("bob", "s3cret")) is UNAUTHORIZED
    web.write_text(f"basic_auth_users:\n  bob: {HASH}\n")
    clock.now += 2
    assert guard.admit(basic("bob", "s3cret")) is None
    assert guard.admit(basic("alice", "s3cret")) is UNAUTHORIZED  # removed users are out
    web.write_text("basic_auth_users:\n  bob: [\n")
    clock.now += 2
    refusal = guard.admit(basic("bob", "s3cret"))
    assert refusal is not None and refusal.status == 500  # fails closed, never open


def test_the_rate_limit_is_a_token_bucket(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("rate_limit:\n  interval: 1s\n  burst: 2\n")
    clock = Clock()
    guard = WebGuard(str(web), clock)
    answers = [guard.admit(None) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None and answers[2].status == 429
    clock.now += 1.0
    assert guard.admit(None) is None


def test_a_burst_of_zero_still_lets_one_request_through(tmp_path: Path) -> None:
    """deviation S10: Go's limiter with burst 0 refuses everything."""
    web = tmp_path / "web.yml"
    web.write_text("rate_limit:\n  interval: 1s\n  burst: 0\n")
    clock = Clock()
    guard = WebGuard(str(web), clock)
    assert guard.admit(None) is None
    refused = guard.admit(None)
    assert refused is not None and refused.status == 429
