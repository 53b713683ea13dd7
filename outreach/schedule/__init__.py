"""The durable schedule: the send record (``send``), every change of its state as one atomic script
(``transitions``), reading it back (``reads``), and the pump that claims due sends (``pump``)."""

from .send import (
    FINAL_STATES,
    HOLDOUT,
    Claim,
    ConsentChange,
    HandOver,
    Intent,
    Send,
    SendState,
    Stop,
    log_entry,
)
from .transitions import LATENCY_BUCKETS, OutcomeBook, Schedule

__all__ = [
    "FINAL_STATES",
    "HOLDOUT",
    "LATENCY_BUCKETS",
    "Claim",
    "ConsentChange",
    "HandOver",
    "Intent",
    "OutcomeBook",
    "Schedule",
    "Send",
    "SendState",
    "Stop",
    "log_entry",
]
