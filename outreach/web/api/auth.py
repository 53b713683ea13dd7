"""The bearer token every ``/v1`` route needs, and the application a route works on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ...app import Outreach
from ..security import token_matches
from .errors import ApiError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API token",
    description="One of the tokens in OUTREACH_API_TOKENS (comma-separated).",
)


def require_api_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Refuses (401) a request without one of the configured tokens; none configured refuses all."""
    tokens = request.app.state.api_tokens
    if credentials is None or not token_matches(credentials.credentials, tokens):
        raise ApiError(
            401, "a valid 'Authorization: Bearer <token>' header is required",
            headers={"WWW-Authenticate": 'Bearer realm="outreach"'},
        )  # fmt: skip


def outreach_of(request: Request) -> Outreach:
    """The ``Outreach`` the application was created for."""
    return request.app.state.outreach
