"""``/v1/sends`` and ``/v1/receipts``: the explain view of a send, and providers' signed receipts."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from ...channels.signed_json import verify_signature
from ...clock import from_ms
from ...delivery.receipts import UnknownSend, WrongChannel
from ...errors import TimingError
from ...registry import CHANNELS
from ...timing import zone
from .auth import outreach_of
from .errors import ApiError, problem, pydantic_errors
from .models import RECEIPT_BODY, Channel, ReceiptIn

router = APIRouter()


# -- the explain view --------------------------------------------------------------------------


def _times(record: dict[str, Any], tz: tzinfo) -> dict[str, Any]:
    """Adds ``<name>`` (UTC) and ``<name>_local`` beside every ``<name>_ms`` field."""
    out = dict(record)
    for key, value in record.items():
        if not key.endswith("_ms"):
            continue
        try:
            instant = from_ms(int(value))
        except (TypeError, ValueError):
            continue
        name = key[: -len("_ms")]
        out[name] = instant.isoformat().replace("+00:00", "Z")
        out[f"{name}_local"] = instant.astimezone(tz).isoformat()
    return out


@router.get(
    "/sends/{send_id}",
    tags=["Sends"],
    summary="Explain a send",
    description=(
        "The send's intent and state and its whole history (plan, shifts, claims, attempts, "
        "outcomes, receipts), like `outreach explain`. Every `<name>_ms` field is also given as "
        "`<name>` (UTC) and `<name>_local` (the send's zone)."
    ),
    responses={404: {"description": "No such send."}},
)
def get_send(request: Request, send_id: Annotated[str, Path(min_length=1, max_length=200)]) -> dict[str, Any]:
    """The send as stored (JSON fields decoded) and its history, times also readable."""
    outreach = outreach_of(request)
    send = outreach.records.get(send_id)
    if send is None:
        raise ApiError(404, [problem("send_id", send_id, "no such send", loc=["path", "send_id"])])
    try:
        tz = zone(send.zone or "UTC")
    except TimingError:
        tz = zone("UTC")
    record: dict[str, Any] = send.as_stored()
    for key in ("channels", "rule", "data"):
        if isinstance(record.get(key), str):
            with contextlib.suppress(ValueError):
                record[key] = json.loads(record[key])
    history = [_times(entry, tz) for entry in outreach.records.history(send_id)]
    return {"send_id": send_id, "zone": send.zone or "UTC", "send": _times(record, tz),
            "history": history}  # fmt: skip


# -- receipts ----------------------------------------------------------------------------------


def receipt_secret(request: Request, channel: str) -> str | None:
    """The channel's signing secret: given to create_app, else channels.toml, else the environment."""
    given = request.app.state.receipt_secrets.get(channel)
    if given:
        return given
    config = outreach_of(request).channels.channels.get(channel)
    if config is not None and config.secret:
        return config.secret
    return os.environ.get(f"OUTREACH_{channel.upper()}_SECRET") or None


@router.post(
    "/receipts/{channel}",
    tags=["Receipts"],
    summary="Record a provider's delivery receipt",
    description=(
        "The provider signs the exact body like Outreach signs its requests: "
        "`X-Outreach-Signature: sha256=<hex HMAC-SHA256>` keyed with the channel's secret "
        "(channels.toml or `OUTREACH_<CHANNEL>_SECRET`). The receipt goes into the send's history. "
        "`bounced` and `complained` put the address on the channel's suppression list; "
        "`complained` also withdraws consent for the send's category."
    ),
    responses={
        401: {"description": "Missing API token, no secret configured, or a bad signature."},
        404: {"description": "No such send."},
        422: {"description": "The receipt is not valid."},
    },
    openapi_extra=RECEIPT_BODY,
)
async def post_receipt(request: Request, channel: Channel) -> dict[str, Any]:
    """Checks the signature over the raw bytes before parsing; the delivery stage does the rest."""
    if channel not in CHANNELS:
        known = ", ".join(CHANNELS)
        raise ApiError(
            422, [problem("channel", channel, f"no such channel ({known})", loc=["path", "channel"])]
        )
    body = await request.body()
    secret = receipt_secret(request, channel)
    if not secret:
        raise ApiError(
            401, f"no signing secret is configured for {channel} (OUTREACH_{channel.upper()}_SECRET)"
        )
    if not verify_signature(secret, body, request.headers.get("x-outreach-signature")):
        raise ApiError(401, "X-Outreach-Signature does not match the body")
    try:
        receipt = ReceiptIn.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, pydantic_errors(exc.errors(include_url=False))) from None
    outreach = outreach_of(request)
    try:
        return await run_in_threadpool(
            outreach.receipts.record, channel, receipt.send_id, receipt.status, receipt.detail
        )
    except UnknownSend as exc:
        raise ApiError(404, [problem(exc.field, exc.value, exc.problem)]) from None
    except WrongChannel as exc:
        raise ApiError(422, [problem(exc.field, exc.value, exc.problem, loc=["path", "channel"])]) from None
