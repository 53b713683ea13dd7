"""The provider kinds a channel can be bound to, by name (``provider`` of a channel in
``outreach.registry.CHANNELS``); each kind is one module (``smtp``, ``http``) that says what its
configuration holds and which transport it makes."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from . import http, outbox, smtp
from .base import ProviderKind

PROVIDERS: Registry[ProviderKind[Any]] = Registry("provider kind", [smtp.KIND, http.KIND, outbox.KIND])
