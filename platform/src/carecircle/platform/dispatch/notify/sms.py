"""SMS through an HTTP gateway.

The common shape of SMS gateway APIs: ``POST {url}`` with a bearer API key and JSON
``{"to": "+86…", "text": "…", "sender": "CareCircle", "reference": "<notification id>"}``;
the gateway answers 2xx with ``{"code": 0|"OK", "message_id": …}`` (or ``{"ok": true}``).
Adapting to a specific provider means changing only this file.
"""

from __future__ import annotations

from typing import Any

import httpx

from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification, render_text

_OK_CODES = {0, "0", "OK", "ok", "success"}


class SmsNotifier:
    channel = "sms"

    def __init__(
        self, url: str, api_key: str, *, sender: str = "CareCircle", timeout_s: float = 5.0
    ) -> None:
        self._url = url
        self._api_key = api_key
        self._sender = sender
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> DeliveryResult:
        body = {
            "to": notification.target,
            "text": render_text(notification.payload)[:500],
            "sender": self._sender,
            "reference": str(notification.id),
        }
        try:
            response = self._client.post(
                self._url, json=body, headers={"Authorization": f"Bearer {self._api_key}"}
            )
        except httpx.HTTPError as err:
            return DeliveryResult(False, f"{type(err).__name__}: {err}")
        if response.status_code >= 300:
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            return DeliveryResult(False, f"HTTP {response.status_code}", retryable=retryable)
        try:
            data: Any = response.json()
        except ValueError:
            return DeliveryResult(False, "the SMS gateway answered with something not JSON")
        if not isinstance(data, dict):
            return DeliveryResult(False, "the SMS gateway answered with something not an object")
        if data.get("ok") is True or data.get("code", 0) in _OK_CODES:
            return DeliveryResult(True, detail=str(data.get("message_id", "")))
        return DeliveryResult(
            False,
            f"gateway refused: {data.get('code')} {data.get('message', '')}".strip(),
            retryable=False,
        )

    def close(self) -> None:
        self._client.close()
