"""``make_pki()``: a throwaway CA with a server certificate (for 127.0.0.1
and localhost) and a client certificate, made by the openssl command line
(./run tests installs Debian's openssl), for the TLS tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    assert binary, "openssl is missing: ./run tests installs it (Debian package openssl)"
    subprocess.run([binary, *map(str, args)], check=True, capture_output=True)


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", path)


def sign(directory: Path, name: str, ca_cert: Path, ca_key: Path, subject: str,
         sans: str, usage: str) -> tuple[Path, Path]:
    """A fresh key and a certificate for it, signed by the CA."""
    key, request, cert = (directory / f"{name}.key", directory / f"{name}.csr",
                          directory / f"{name}.crt")
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\n")
    _key(key)
    _openssl("req", "-new", "-key", key, "-subj", subject, "-out", request)
    _openssl("x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", cert)
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    _key(ca_key)
    _openssl("req", "-x509", "-new", "-key", ca_key, "-subj", "/CN=aerostat test CA",
             "-days", "2", "-out", ca_cert)
    server_cert, server_key = sign(directory, "server", ca_cert, ca_key, "/CN=aerostat",
                                   "IP:127.0.0.1,DNS:localhost", "serverAuth")
    client_cert, client_key = sign(directory, "client", ca_cert, ca_key, "/CN=scraper",
                                   "DNS:scraper.test", "clientAuth")
    return Pki(ca_cert, ca_key, server_cert, server_key, client_cert, client_key)
