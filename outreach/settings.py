"""Every tunable, named once with its default, read from ``OUTREACH_*`` variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

#: The starter project shipped inside the package: what ``outreach init`` copies, and the project
#: a command uses when it is run outside any project (``outreach demo`` in an empty folder).
STARTER = Path(__file__).resolve().parent / "starter"

#: Key prefix for everything Outreach keeps in Redis.
DEFAULT_PREFIX = "outreach:"
#: Shards the state is spread over (fixed for a deployment: customers are placed by it).
DEFAULT_SHARDS = 16
#: Seconds a claimed send stays leased to one worker before the reaper returns it.
DEFAULT_LEASE_SECONDS = 300
#: Most sends one claim script takes (bounded so Redis is never blocked long).
DEFAULT_CLAIM_LIMIT = 500
#: Most sends in flight at once: the pump claims no more than workers can finish within a lease.
DEFAULT_MAX_INFLIGHT = 5000
#: Sends carried by one Dramatiq deliver message.
DEFAULT_DELIVER_BATCH = 50
#: Events carried by one Dramatiq ingest message (a batch POST or an import is cut into these),
#: applied with a few round trips for the whole batch.
DEFAULT_INGEST_BATCH = 200
#: Seconds an accepted event may take to be applied before the pump queues it again
#: (a worker that died holding it); ingestion is idempotent, so a slow one is applied once.
DEFAULT_INGEST_LEASE_SECONDS = 10.0
#: Times an overdue event is queued again before it is given up to the dead-letter store.
DEFAULT_INGEST_DISPATCHES = 5
#: The pump queues overdue events again only while fewer than this many events wait in the
#: ingest queue, not yet taken by a worker (each waiting message counted as a full batch):
#: behind a longer backlog an event is late because of the backlog, not a dead worker.
DEFAULT_INGEST_BACKLOG = 1000
#: Seconds between two pump ticks in the scheduler process.
DEFAULT_PUMP_INTERVAL = 1.0
#: Seconds between two sweeps (lease reaper, check-in index).
DEFAULT_SWEEP_INTERVAL = 30.0
#: Delivery attempts before a send is failed and dead-lettered.
DEFAULT_MAX_ATTEMPTS = 5
#: First retry backoff in seconds; doubled per attempt, with jitter.
DEFAULT_RETRY_BASE_SECONDS = 60
#: Longest retry backoff in seconds.
DEFAULT_RETRY_MAX_SECONDS = 6 * 3600
#: A send found this many seconds late inside its window still goes out.
DEFAULT_LATE_GRACE_SECONDS = 300
#: Days an ingested event id is remembered for de-duplication.
DEFAULT_EVENT_TTL_DAYS = 30
#: Days a finished send may wait in Redis for the archive before Redis drops it (the archive down
#: that long), and days a provider's message id and a trace context are kept there; 0 keeps them.
DEFAULT_HISTORY_DAYS = 90
#: Days the archive keeps a finished send (its history, receipts and answer).
DEFAULT_ARCHIVE_DAYS = 400
#: Seconds a finished send stays in Redis before it is archived (most receipts arrive by then).
DEFAULT_ARCHIVE_AFTER_SECONDS = 300
#: Where the archive's SQLite file is kept when OUTREACH_ARCHIVE_URL is unset, in the project folder
#: (or the working directory outside any project): one file per key prefix.
ARCHIVE_FOLDER = ".outreach"
#: Base URL of the web process, for links in messages.
DEFAULT_PUBLIC_URL = "http://localhost:8000"
#: Days an unsubscribe link in a message keeps working.
DEFAULT_LINK_DAYS = 90
#: Days the one-click answer links of a survey keep working.
DEFAULT_SURVEY_LINK_DAYS = 14
#: Dramatiq worker threads in ``outreach run``.
DEFAULT_WORKER_THREADS = 8


def is_project(folder: Path) -> bool:
    """Whether a folder holds an Outreach project (``config/journeys/`` in it)."""
    return (folder / "config" / "journeys").is_dir()


def _default_project() -> Path:
    """The working directory when it is a project, else the starter project in the package."""
    here = Path.cwd()
    return here if is_project(here) else STARTER


#: ``OUTREACH_MODE``: the defaults work in development; production refuses what is unsafe.
DEVELOPMENT = "development"
PRODUCTION = "production"
#: ``OUTREACH_OUTCOME_LOG``: a line per delivered batch, a line per outcome, or none.
OUTCOME_LOGS = ("batch", "each", "off")
#: The secret that signs links until OUTREACH_SECRET is set (anyone can read it here).
DEVELOPMENT_SECRET = "outreach-development-secret"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """Runtime settings; ``Settings.from_env()`` reads ``OUTREACH_<FIELD>`` for each field."""

    #: ``redis://…`` (a single server or any node of a cluster); None runs everything on an
    #: in-process fakeredis.
    redis_url: str | None = None
    #: Dramatiq's broker: ``amqp://…`` (RabbitMQ) or ``redis://…``; None uses the state's Redis.
    broker_url: str | None = None
    prefix: str = DEFAULT_PREFIX
    shards: int = DEFAULT_SHARDS
    #: The project folder: ``config/`` and ``templates/`` in it (``outreach init`` makes one).
    project: Path = field(default_factory=_default_project)
    #: Where the config files are (default: the project's ``config/``).
    config_dir: Path = None  # type: ignore[assignment]
    #: Where the templates and catalogs are (default: the project's ``templates/``).
    templates_dir: Path = None  # type: ignore[assignment]
    outbox_dir: Path = field(default_factory=lambda: Path.cwd() / "outbox")
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    claim_limit: int = DEFAULT_CLAIM_LIMIT
    deliver_batch: int = DEFAULT_DELIVER_BATCH
    ingest_batch: int = DEFAULT_INGEST_BATCH
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    pump_interval: float = DEFAULT_PUMP_INTERVAL
    ingest_lease_seconds: float = DEFAULT_INGEST_LEASE_SECONDS
    ingest_dispatches: int = DEFAULT_INGEST_DISPATCHES
    ingest_backlog: int = DEFAULT_INGEST_BACKLOG
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_base_seconds: int = DEFAULT_RETRY_BASE_SECONDS
    retry_max_seconds: int = DEFAULT_RETRY_MAX_SECONDS
    late_grace_seconds: int = DEFAULT_LATE_GRACE_SECONDS
    event_ttl_days: int = DEFAULT_EVENT_TTL_DAYS
    history_days: int = DEFAULT_HISTORY_DAYS
    #: The archive of finished sends: ``postgresql://…`` or ``sqlite:///<file>`` (``sqlite://``: in
    #: memory); unset: a SQLite file in the project's ``.outreach/`` folder (``archive_file``).
    archive_url: str = ""
    archive_days: int = DEFAULT_ARCHIVE_DAYS
    archive_after_seconds: float = DEFAULT_ARCHIVE_AFTER_SECONDS
    worker_threads: int = DEFAULT_WORKER_THREADS
    #: ``development`` (the defaults work, for trying out) or ``production``: the processes refuse to
    #: start with the development secret, without API tokens, or on a Redis that may lose data.
    mode: str = DEVELOPMENT
    #: Signs links in messages (at least 32 characters in production).
    secret: str = DEVELOPMENT_SECRET
    #: Secrets that signed links before a rotation, comma-separated: links made with them still work.
    old_secrets: str = ""
    #: Run in production on a Redis without persistence or with eviction (a cache, a test server).
    allow_volatile_redis: bool = False
    #: ``text`` or ``json``: one object a line for a log collector (``outreach.logs``).
    log_format: str = "text"
    #: What the ``outreach.outcomes`` logger says at INFO: ``batch`` (one line per delivered batch,
    #: its outcomes counted), ``each`` (one line per outcome) or ``off``.
    outcome_log: str = "batch"
    #: Seconds between two looks at the project's files; a change is checked, then loaded (0: never).
    reload_seconds: float = 5.0
    #: OpenTelemetry traces from HTTP through ingestion to delivery (``otel`` extra; ``outreach.tracing``).
    tracing: bool = False
    public_url: str = DEFAULT_PUBLIC_URL
    #: mailto address for List-Unsubscribe; empty for none.
    unsubscribe_mailto: str = ""
    link_days: int = DEFAULT_LINK_DAYS
    #: Days the answer links in a survey message keep working.
    survey_link_days: int = DEFAULT_SURVEY_LINK_DAYS

    def __post_init__(self) -> None:
        if self.config_dir is None:
            object.__setattr__(self, "config_dir", self.project / "config")
        if self.templates_dir is None:
            object.__setattr__(self, "templates_dir", self.project / "templates")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret a link may be signed with: the current one first, then the old ones."""
        return (self.secret, *(s.strip() for s in self.old_secrets.split(",") if s.strip()))

    @property
    def archive_file(self) -> Path:
        """The SQLite archive used when ``archive_url`` is unset: ``.outreach/archive-<prefix>.sqlite3``
        in the project folder (the working directory outside any project), beside the embedded store."""
        folder = self.project if self.project != STARTER else Path.cwd()
        name = re.sub(r"[^A-Za-z0-9_-]", "", self.prefix) or "outreach"
        return (folder / ARCHIVE_FOLDER / f"archive-{name}.sqlite3").resolve()

    @property
    def archive(self) -> str:
        """The archive's URL (``archive_url``, else the file ``archive_file``)."""
        return self.archive_url or f"sqlite:///{self.archive_file}"

    @property
    def production(self) -> bool:
        return self.mode == PRODUCTION

    def check(self) -> None:
        """Refuse what production must not run with (``OUTREACH_MODE=production``)."""
        if self.mode not in (DEVELOPMENT, PRODUCTION):
            raise ConfigError(f"OUTREACH_MODE={self.mode!r}: must be {DEVELOPMENT} or {PRODUCTION}")
        if self.outcome_log not in OUTCOME_LOGS:
            choices = ", ".join(OUTCOME_LOGS)
            raise ConfigError(f"OUTREACH_OUTCOME_LOG={self.outcome_log!r}: must be one of {choices}")
        for name in ("ingest_batch", "deliver_batch", "claim_limit"):
            if getattr(self, name) < 1:
                raise ConfigError(f"OUTREACH_{name.upper()}={getattr(self, name)!r}: must be at least 1")
        if not self.production:
            return
        if self.secret == DEVELOPMENT_SECRET or len(self.secret) < MIN_SECRET_LENGTH:
            make_one = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            raise ConfigError(
                f"OUTREACH_SECRET: in production it must be your own secret of at least "
                f"{MIN_SECRET_LENGTH} characters ({make_one})"
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        base = cls()
        for f in fields(cls):
            raw = env.get(f"OUTREACH_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            current = getattr(base, f.name)
            try:
                if isinstance(current, Path):
                    values[f.name] = Path(raw)
                elif isinstance(current, bool):
                    values[f.name] = raw.lower() in {"1", "true", "yes"}
                elif isinstance(current, int):
                    values[f.name] = int(raw)
                elif isinstance(current, float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ConfigError(
                    f"environment OUTREACH_{f.name.upper()}={raw!r}: not a valid {type(current).__name__}"
                ) from None
        values.update(overrides)
        # Built anew, not replaced: config_dir and templates_dir follow the project given.
        return cls(**values)  # type: ignore[arg-type]
