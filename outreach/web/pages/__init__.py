"""Customer pages: survey answers and comments, unsubscribe, preferences; tracked links and the
open image.

Every page is plain HTML (no JavaScript), rendered in the customer's locale and
register from ``templates/_web/``; a page reached without a known customer
negotiates ``Accept-Language`` against the shipped locales. Links are
authorised by the signed token in their path (``outreach.links``).
"""

from __future__ import annotations

from fastapi import APIRouter

from . import clicks, preferences, survey, unsubscribe
from .negotiate import negotiate
from .shared import STATUS, PageError, Pages, outreach_of, page_categories, page_channels, pages_of, path_of
from .tokens import preferences_url, read, require_customer

router = APIRouter(tags=["Customer pages"])
# In this order in the OpenAPI document.
router.include_router(survey.router)
router.include_router(unsubscribe.router)
router.include_router(preferences.router)
router.include_router(clicks.router)

__all__ = [
    "page_categories",
    "page_channels",
    "STATUS",
    "PageError",
    "Pages",
    "negotiate",
    "outreach_of",
    "pages_of",
    "path_of",
    "preferences_url",
    "read",
    "require_customer",
    "router",
]
