"""The HTTP API under ``/v1``: events, customer profiles and data rights, the explain view, delivery
receipts, broadcasts.

Every route needs ``Authorization: Bearer <token>``. Errors are JSON:
``{"detail": "<field>=<value>: <problem>", "errors": [{"field", "value", "problem", "loc"}]}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ...delivery.receipts import RECEIPT_STATUSES
from . import broadcasts, customers, events, rights, sends
from .auth import bearer, require_api_token
from .errors import MISSING, ApiError, describe, problem, pydantic_errors
from .models import EXTRA_SCHEMAS, MAX_BATCH, CustomerIn, EventIn, ReceiptIn
from .sends import receipt_secret

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_token)])
# In this order in the OpenAPI document.
router.include_router(events.router)
router.include_router(customers.router)
router.include_router(rights.router)
router.include_router(sends.router)
router.include_router(broadcasts.router)

__all__ = [
    "EXTRA_SCHEMAS",
    "MAX_BATCH",
    "MISSING",
    "RECEIPT_STATUSES",
    "ApiError",
    "CustomerIn",
    "EventIn",
    "ReceiptIn",
    "bearer",
    "describe",
    "problem",
    "pydantic_errors",
    "receipt_secret",
    "require_api_token",
    "router",
]
