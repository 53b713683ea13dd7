"""Click tracking, privacy first: clicks on signed ``/c/`` links and (opted in per category) opens,
kept with their send in Redis or in the archive, erased with the customer."""

from .tracking import KINDS, MAX_KEPT, Click, Clicks

__all__ = ["KINDS", "MAX_KEPT", "Click", "Clicks"]
