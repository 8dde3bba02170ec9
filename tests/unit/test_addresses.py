"""URLs shown on the status page lose their credentials."""

from __future__ import annotations

import pytest

from aerostat.addresses import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("http://127.0.0.1:9090", "http://127.0.0.1:9090", id="plain"),
        pytest.param("https://admin:s3cret@grafana.example:3000/d/x?orgId=1",
                     "https://***@grafana.example:3000/d/x?orgId=1", id="user-and-password"),
        pytest.param("https://token123@host/", "https://***@host/", id="token-as-user"),
        pytest.param("http://u:p@[::1]:9090/", "http://***@[::1]:9090/", id="ipv6"),
        pytest.param("http://u:p@host:notaport/", "(a URL that does not parse)", id="bad-port"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
