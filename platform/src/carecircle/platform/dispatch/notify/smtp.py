"""E-mail through an SMTP server (smtplib; STARTTLS and login when configured)."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage

from carecircle.platform.dispatch.notify.base import DeliveryResult, Notification, render_text


class EmailNotifier:
    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout_s = timeout_s

    def send(self, notification: Notification) -> DeliveryResult:
        text = render_text(notification.payload)
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = notification.target
        msg["Subject"] = text[:120]
        msg["X-CareCircle-Notification"] = str(notification.id)
        msg.set_content(
            text + "\n\n" + json.dumps(notification.payload, indent=2, sort_keys=True) + "\n"
        )
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as err:
            return DeliveryResult(False, f"recipient refused: {err.recipients}", retryable=False)
        except (smtplib.SMTPException, OSError) as err:
            return DeliveryResult(False, f"{type(err).__name__}: {err}")
        if refused:
            return DeliveryResult(False, f"recipient refused: {refused}", retryable=False)
        return DeliveryResult(True, detail=f"{self._host}:{self._port}")

    def close(self) -> None:
        return None
