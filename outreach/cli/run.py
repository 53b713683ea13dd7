"""The long-running processes: ``outreach run`` (scheduler and worker), ``web`` and ``scheduler``."""

from __future__ import annotations

import contextlib
import signal
import threading

import click

from ..app import Outreach
from ..settings import Settings
from . import common


@click.command()
@click.option("--threads", default=None, type=int, help="Worker threads (default 8).")
@click.option("--until-idle", is_flag=True, help="Process what is queued and due now, then exit.")
def run(threads: int | None, until_idle: bool) -> None:
    """Run the scheduler and a worker in one process; a change to the project's files (or SIGHUP)
    reloads its config once the whole of it checks out."""
    from ..reloading import reload, watch
    from ..ticks import build_scheduler

    stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    if not until_idle:
        # Blocked before any thread starts (threads inherit the mask): sigwait below receives them,
        # instead of SIGTERM or SIGHUP ending the process before the embedded store is saved.
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    with common._app() as app:
        worker = app.worker(threads)
        try:
            if until_idle:
                app.drain(worker)
                while app.sweep() + app.pump():
                    app.drain(worker)
                app.drain(worker)
                waiting, inflight = app.schedule.depth()
                click.echo(f"idle: {waiting} sends waiting, {inflight} in flight")
                return
            scheduler = build_scheduler(app, blocking=False)
            scheduler.start()
            watcher = watch(app)
            click.echo("outreach running (scheduler + worker); Ctrl-C stops, SIGHUP reloads the config")
            while signal.sigwait(stops) == signal.SIGHUP:
                reload(app)
            scheduler.shutdown()
            if watcher is not None:
                watcher.stop()
        finally:
            worker.stop()
            app.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def web(host: str, port: int) -> None:
    """Run the web process: survey, unsubscribe and preference pages, the API, /metrics."""
    import uvicorn

    uvicorn.run("outreach.web.main:app", host=host, port=port, proxy_headers=True)


@click.command()
def scheduler() -> None:
    """Run the scheduler process (pump and sweeps) against OUTREACH_REDIS_URL; a change to the
    project's files (or SIGHUP) reloads its config once the whole of it checks out."""
    from ..reloading import reload, watch
    from ..ticks import build_scheduler

    settings = Settings.from_env()
    if not settings.redis_url:
        raise click.ClickException("the scheduler process needs OUTREACH_REDIS_URL (or use `outreach run`)")
    app = Outreach(settings)
    watch(app)
    # The handler only wakes a thread: the reload itself never runs inside a signal handler.
    requests = threading.Event()
    signal.signal(signal.SIGHUP, lambda signum, frame: requests.set())

    def on_request() -> None:
        while True:
            requests.wait()
            requests.clear()
            reload(app)

    threading.Thread(target=on_request, name="outreach-sighup", daemon=True).start()
    click.echo("outreach scheduler running; Ctrl-C stops, SIGHUP reloads the config")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        build_scheduler(app, blocking=True).start()
