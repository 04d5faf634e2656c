"""The outbound HTTP transport against a real local server: safe destinations, no redirects, timeouts."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.integrations.outbound.transport import DestinationRefused, SafeHttpTransport, TransportError


class _Partner(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        _Partner.seen.append({"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
        elif self.path == "/slow":
            time.sleep(1.5)
            self.send_response(200)
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Partner)  # a free port the OS picks
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def _clear():
    _Partner.seen.clear()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]:9/", "http://10.0.0.1/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://2130706433/", "http://0.0.0.0/", "http://[fc00::1]/",
    "http://100.64.0.1/",
])
def test_private_loopback_and_link_local_destinations_are_refused(url):
    with pytest.raises(DestinationRefused):
        SafeHttpTransport().post(url, body=b"{}", headers={}, timeout=1)


def test_a_refused_destination_is_never_contacted(server):
    with pytest.raises(DestinationRefused):
        SafeHttpTransport().post(f"{server}/hook", body=b"{}", headers={}, timeout=1)

    assert _Partner.seen == []


def test_an_allow_listed_network_is_delivered_to(server):
    response = SafeHttpTransport(allowed_networks=["127.0.0.0/8"]).post(
        f"{server}/hook?x=1", body=b'{"a":1}', headers={"webhook-id": "msg_1"}, timeout=2)

    assert response.status == 204
    assert _Partner.seen[0]["path"] == "/hook?x=1"
    assert _Partner.seen[0]["headers"]["webhook-id"] == "msg_1"
    assert _Partner.seen[0]["body"] == b'{"a":1}'


def test_a_redirect_is_returned_not_followed(server):
    response = SafeHttpTransport(allowed_networks=["127.0.0.1/32"]).post(f"{server}/redirect", body=b"{}", headers={}, timeout=2)

    assert response.status == 302
    assert [s["path"] for s in _Partner.seen] == ["/redirect"]


def test_a_slow_partner_times_out(server):
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"timed out|TimeoutError"):
        SafeHttpTransport(allowed_networks=["127.0.0.1/32"]).post(f"{server}/slow", body=b"{}", headers={}, timeout=0.3)

    assert time.monotonic() - started < 1.4


def test_only_http_urls_are_sent_to():
    with pytest.raises(DestinationRefused):
        SafeHttpTransport().post("file:///etc/passwd", body=b"{}", headers={}, timeout=1)
