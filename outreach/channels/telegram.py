"""The Telegram Bot API: each delivery is one ``sendMessage`` to a chat id (or a public
``@channelusername``); the answer's message id, with the chat id, is the reference
(``<chat_id>:<message_id>``). Telegram reports no delivery statuses to bots.

The bot token is part of every request's path, so it is checked at start-up (digits, a colon, the
secret part) and kept out of every error message. Errors are read from ``error_code`` and
``description``: a bot blocked by the user, a deactivated user, an unknown chat condemn the address;
429 is transient with ``parameters.retry_after``; the rest are our own request's or token's problems.

The webhook checks ``X-Telegram-Bot-Api-Secret-Token`` against the ``secret_token`` given to
``setWebhook`` (Telegram signs nothing) and reads each update's ``message`` as an inbound message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..errors import ChannelError, ConfigError, PermanentChannelError, TransientChannelError
from .base import Delivery, ProviderKind
from .client import HttpClient, Response
from .parsing import DEFAULT_TIMEOUT, Where, base_url_key, text_key, timeout_key
from .webhooks import BadSignature, Blocked, Inbound, Status, Unblocked, WebhookAnswer, WebhookRequest, same

KIND_NAME = "telegram"
DEFAULT_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "x-telegram-bot-api-secret-token"

#: A bot token as @BotFather issues it: the bot's numeric id, a colon, the secret part.
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
#: What ``setWebhook`` accepts as ``secret_token``.
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_CHAT_ID = re.compile(r"^-?[0-9]{1,20}$")

#: Descriptions (400, 403) that say the chat itself cannot be written to: the address is suppressed.
ADDRESS_PHRASES = (
    "bot was blocked by the user",
    "user is deactivated",
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "bot was kicked",
    "bot can't initiate conversation",
    "bot is not a member",
    "bot can't send messages to bots",
    "group chat was upgraded to a supergroup",
)


@dataclass(frozen=True)
class TelegramConfig:
    """One Telegram bot."""

    bot_token: str = field(repr=False)
    #: The ``secret_token`` registered with ``setWebhook`` (None: webhooks are refused).
    webhook_secret: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT


def chat_id(address: str) -> int | str:
    """The ``chat_id`` of a request: a number for a chat id, the text for an ``@channelusername``."""
    return int(address) if _CHAT_ID.match(address) else address


class TelegramTransport:
    """Sends each delivery with ``sendMessage`` as plain text (no parse mode)."""

    def __init__(self, name: str, config: TelegramConfig, *, clock: Clock | None = None) -> None:
        if not _TOKEN.match(config.bot_token):
            raise ConfigError(f"{name}: bot_token is not a Telegram bot token (<bot id>:<secret>)")
        self.name = name
        self.client = HttpClient(f"{name} {KIND_NAME}", config.base_url, config.timeout, clock=clock)
        self._token = config.bot_token
        self._path = self.client.path(f"/bot{config.bot_token}/sendMessage")

    def close(self) -> None:
        self.client.close()

    def send(self, delivery: Delivery) -> str:
        """Send the text; returns ``<chat_id>:<message_id>``."""
        try:
            return self._send(delivery)
        except ChannelError as exc:
            raise self._scrubbed(exc) from None

    def _send(self, delivery: Delivery) -> str:
        chat = chat_id(delivery.address)
        response = self.client.post_json(self._path, {"chat_id": chat, "text": delivery.text})
        data = response.json()
        if response.ok and isinstance(data, dict) and data.get("ok") is True:
            result = data.get("result")
            chat_of = result.get("chat") if isinstance(result, dict) else None
            message_id = result.get("message_id") if isinstance(result, dict) else None
            if isinstance(message_id, int) and not isinstance(message_id, bool):
                # A message to @channelusername is recorded under the channel's numeric id.
                numeric = chat_of.get("id") if isinstance(chat_of, dict) else None
                return f"{numeric if isinstance(numeric, int) else chat}:{message_id}"
            return f"{KIND_NAME}:{delivery.send_id}"
        raise self.refusal(response, data)

    def refusal(self, response: Response, data: object) -> ChannelError:
        """The channel error of an answer with ``ok: false`` (or no Bot API answer at all)."""
        answer = data if isinstance(data, dict) else {}
        code = answer.get("error_code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else response.status
        description = answer.get("description")
        text = description if isinstance(description, str) else response.text[:500]
        parameters = answer.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        message = f"{self.client.where}: {status}: {text}"
        migrated = parameters.get("migrate_to_chat_id")
        if migrated is not None:
            message += f" (the group is now chat {migrated})"
        if status in {408, 425, 429} or status >= 500 or response.status >= 500:
            wait = parameters.get("retry_after")
            seconds = float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) else None
            return TransientChannelError(message, retry_after=seconds or self.client.retry_after(response))
        lowered = text.lower()
        address = status in {400, 403} and any(phrase in lowered for phrase in ADDRESS_PHRASES)
        return PermanentChannelError(message, address=address)

    def _scrubbed(self, exc: ChannelError) -> ChannelError:
        """The error with the bot token cut out of its message (it is in every request's path)."""
        text = str(exc)
        if self._token not in text:
            return exc
        text = text.replace(self._token, "<bot_token>")
        if isinstance(exc, TransientChannelError):
            return TransientChannelError(text, retry_after=exc.retry_after)
        if isinstance(exc, PermanentChannelError):
            return PermanentChannelError(text, address=exc.address)
        return ChannelError(text)


# -- webhooks ------------------------------------------------------------------------------


def webhook(config: TelegramConfig, request: WebhookRequest) -> WebhookAnswer:
    """An update posted with our secret token: a message in it is an inbound message."""
    if not config.webhook_secret:
        raise BadSignature(f"{KIND_NAME}: webhook_secret is not configured: updates cannot be verified")
    if not same(config.webhook_secret, request.headers.get(SECRET_HEADER)):
        raise BadSignature(f"{KIND_NAME}: {SECRET_HEADER} is not our webhook_secret")
    try:
        update = json.loads(request.body)
    except ValueError:
        return WebhookAnswer()
    member: Any = update.get("my_chat_member") if isinstance(update, dict) else None
    if isinstance(member, dict):
        # The user blocked the bot (or removed it from the chat): nothing sent there arrives.
        chat_id = (member.get("chat") or {}).get("id") if isinstance(member.get("chat"), dict) else None
        status = (member.get("new_chat_member") or {}).get("status")
        if isinstance(chat_id, int) and not isinstance(chat_id, bool) and status in ("kicked", "left"):
            return WebhookAnswer([Blocked(str(chat_id))])
        if (
            isinstance(chat_id, int)
            and not isinstance(chat_id, bool)
            and status in ("member", "administrator")
        ):
            return WebhookAnswer([Unblocked(str(chat_id))])  # restarted: a block's suppression is lifted
        return WebhookAnswer()
    message: Any = update.get("message") if isinstance(update, dict) else None
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_number = chat.get("id") if isinstance(chat, dict) else None
    if not isinstance(chat_number, int) or isinstance(chat_number, bool):
        return WebhookAnswer()
    text = message.get("text")
    if not isinstance(text, str):
        text = message.get("caption")
    events: list[Status | Inbound] = [Inbound(str(chat_number), text if isinstance(text, str) else "")]
    return WebhookAnswer(events)


# -- configuration ------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> TelegramConfig | None:
    """The settings of a ``[<channel>.<provider>]`` table of this kind (None without a bot token)."""
    token = text_key(where, table, "bot_token")
    secret = text_key(where, table, "webhook_secret")
    if token is None:
        if secret is None:
            return None
        raise where.fail("bot_token", None, f"is needed to send: set it or {where.env('bot_token')}")
    if not _TOKEN.match(token):
        raise where.fail("bot_token", token, "must be a bot token from @BotFather (<bot id>:<secret>)")
    if secret is not None and not _SECRET.match(secret):
        raise where.fail("webhook_secret", secret, "must be 1-256 of the characters A-Z a-z 0-9 _ -")
    return TelegramConfig(
        token,
        webhook_secret=secret,
        base_url=base_url_key(where, table, DEFAULT_BASE_URL),
        timeout=timeout_key(where, table),
    )


def build(channel: str, config: TelegramConfig) -> TelegramTransport:
    return TelegramTransport(channel, config)


KIND: ProviderKind[TelegramConfig] = ProviderKind(
    name=KIND_NAME,
    description="the Telegram Bot API: sendMessage per delivery to a chat id or @channelusername",
    keys=frozenset({"bot_token", "webhook_secret", "base_url", "timeout"}),
    parse=parse,
    build=build,
    webhook=webhook,
)
