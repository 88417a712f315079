"""Build dispatch's parts from :class:`PlatformSettings` (at start-up, never at import)."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from carecircle.common.contract.topics import Topics
from carecircle.common.errors import ConfigError
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.dispatch.notify.base import Notifier
from carecircle.platform.dispatch.notify.mqtt import MqttNotifier
from carecircle.platform.dispatch.notify.outbox import RetryPolicy
from carecircle.platform.dispatch.notify.sms import SmsNotifier
from carecircle.platform.dispatch.notify.smtp import EmailNotifier
from carecircle.platform.dispatch.notify.webhook import WebhookNotifier
from carecircle.platform.dispatch.policy import DispatchPolicy
from carecircle.platform.dispatch.service import Channels, DispatchService
from carecircle.platform.dispatch.travel import GreatCircleEstimator
from carecircle.platform.settings import PlatformSettings


def timezone_of(settings: PlatformSettings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"timezone {settings.timezone!r} is not a known time zone "
            "(use an IANA name such as Asia/Shanghai)"
        ) from err


def load_policy(settings: PlatformSettings) -> DispatchPolicy:
    data: dict[str, object] = {}
    if settings.dispatch_policy_file is not None:
        try:
            data = json.loads(settings.dispatch_policy_file.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(
                f"dispatch_policy_file {settings.dispatch_policy_file} cannot be read: {err}"
            ) from err
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"dispatch_policy_file {settings.dispatch_policy_file} is not JSON: {err}"
            ) from err
        if not isinstance(data, dict):
            raise ConfigError("dispatch_policy_file must hold a JSON object")
    overrides = {
        "k": settings.dispatch_k,
        "offer_timeout_s": settings.dispatch_offer_timeout_s,
        "escalate_after_s": settings.dispatch_escalate_after_s,
        "emergency_number": settings.dispatch_emergency_number,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return DispatchPolicy.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"dispatch policy: {where}: {first['msg']}") from err


def build_service(settings: PlatformSettings) -> DispatchService:
    channels = Channels(
        sms=settings.notify_sms_url is not None,
        webhook_url=settings.notify_webhook_url,
        email_to=tuple(settings.notify_email_to) if settings.notify_smtp_host else (),
        emergency_via=settings.notify_emergency_via,
    )
    return DispatchService(
        policy=load_policy(settings),
        estimator=GreatCircleEstimator(detour=settings.dispatch_detour_factor),
        tz=timezone_of(settings),
        channels=channels,
    )


def build_notifiers(settings: PlatformSettings) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {
        "mqtt": MqttNotifier(BrokerAddress.from_url(settings.mqtt_url), Topics(settings.topic_root))
    }
    if settings.notify_webhook_url:
        if settings.notify_webhook_secret is None:
            raise ConfigError("notify_webhook_url needs notify_webhook_secret to sign requests")
        notifiers["webhook"] = WebhookNotifier(settings.notify_webhook_secret.get_secret_value())
    if settings.notify_smtp_host:
        notifiers["email"] = EmailNotifier(
            settings.notify_smtp_host,
            settings.notify_smtp_port,
            settings.notify_email_from,
            username=settings.notify_smtp_user,
            password=(
                settings.notify_smtp_password.get_secret_value()
                if settings.notify_smtp_password
                else None
            ),
            starttls=settings.notify_smtp_starttls,
        )
    if settings.notify_sms_url:
        if settings.notify_sms_api_key is None:
            raise ConfigError("notify_sms_url needs notify_sms_api_key")
        notifiers["sms"] = SmsNotifier(
            settings.notify_sms_url, settings.notify_sms_api_key.get_secret_value()
        )
    return notifiers


def retry_of(settings: PlatformSettings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.notify_max_attempts, base_s=settings.notify_backoff_s)
