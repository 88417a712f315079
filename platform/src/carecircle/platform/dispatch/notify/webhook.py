"""Webhook: JSON POST signed with HMAC-SHA256.

Headers: ``X-CareCircle-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` and
``X-CareCircle-Timestamp: <unix seconds>``; the body also carries ``sent_at`` so the
signed bytes include the time (receivers should refuse stale ones).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx

from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification

SIGNATURE_HEADER = "X-CareCircle-Signature"
TIMESTAMP_HEADER = "X-CareCircle-Timestamp"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def _classify(status: int) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(True, detail=f"HTTP {status}")
    retryable = status >= 500 or status in (408, 429)
    return DeliveryResult(False, f"HTTP {status}", retryable=retryable)


class WebhookNotifier:
    """POSTs the payload to the target URL (or the configured default URL)."""

    channel = "webhook"

    def __init__(self, secret: str, *, timeout_s: float = 5.0) -> None:
        if not secret:
            raise ValueError("a webhook needs a signing secret")
        self._secret = secret
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> DeliveryResult:
        payload = {**notification.payload, "sent_at": datetime.now(UTC).isoformat()}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: str(int(time.time())),
        }
        try:
            response = self._client.post(notification.target, content=body, headers=headers)
        except httpx.HTTPError as err:
            return DeliveryResult(False, f"{type(err).__name__}: {err}")
        return _classify(response.status_code)

    def close(self) -> None:
        self._client.close()
