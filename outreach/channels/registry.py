"""The provider kinds a channel can be bound to, by name (``provider`` of a channel in
``outreach.registry.CHANNELS``); each kind is one module (``smtp``, ``http``) that says what its
configuration holds and which transport it makes."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from . import http, line, outbox, postmark, sendgrid, ses, smtp, telegram, twilio, vonage, whatsapp_cloud
from .base import ProviderKind

PROVIDERS: Registry[ProviderKind[Any]] = Registry(
    "provider kind",
    [
        smtp.KIND,
        http.KIND,
        outbox.KIND,
        whatsapp_cloud.KIND,
        line.KIND,
        telegram.KIND,
        twilio.KIND,
        vonage.KIND,
        ses.KIND,
        sendgrid.KIND,
        postmark.KIND,
    ],
)
