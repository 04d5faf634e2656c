"""Inbound HMAC checks against the published test vectors."""

from __future__ import annotations

import hmac

import pytest

from apps.integrations import signing
from apps.integrations.shopify.verify import verify as shopify_verify
from tests.integrations.conftest import realworld_json


def _shopify_vectors():
    data = realworld_json("shopify/hmac_test_vectors_go_shopify.json")
    return [(data["secret"], v) for v in data["vectors"]]


def test_every_go_shopify_vector_verifies_as_published():
    for secret, vector in _shopify_vectors():
        headers = {}
        if vector["x_shopify_hmac_sha256"] is not None:
            headers["X-Shopify-Hmac-Sha256"] = vector["x_shopify_hmac_sha256"]

        result = shopify_verify(secrets=[secret], body=vector["body"].encode(), headers=headers)

        assert result is vector["expected_valid"], vector


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))

    assert signing.verify_hmac_sha256_b64(secrets=["hush"], body=b'"my secret message"',
                                          header="hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=")
    assert len(calls) == 1


@pytest.mark.parametrize("header", ["hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI", "hMTq0K2x7oyOjoBwGYeTj5oxfnaVY!zbanUG9aajpKI=",
                                    " ", "84c4ead0adb1ee8c8e8e8070198793e39a317e7695617cdb6a7506f5a6a3a4a2"])
def test_malformed_headers_never_verify(header):
    assert not signing.verify_hmac_sha256_b64(secrets=["hush"], body=b'"my secret message"', header=header)


def test_an_empty_secret_never_verifies_anything():
    body = b"{}"
    assert not signing.verify_hmac_sha256_b64(secrets=[""], body=body, header=signing.hmac_sha256_b64("", body))
