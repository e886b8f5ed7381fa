"""The Faust app both Faust baselines start from: the worker's tuning, Faust's own machinery.

Baselines (a) and (b) must differ from the pipeline only in the work they do per
record, so they take the worker's client settings (`streams.app.faust_config`)
and its event loop (`CREATOR_SCORES_EVENT_LOOP`), but none of its extension classes
(Stream, Agent, ...) nor its own consumer transport (batch ingest): a baseline runs
Faust as Faust ships it.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.app import faust_config, use_event_loop
from streams.settings import Settings


def run(app: faust.App) -> None:
    """Run a baseline app as a worker process (what `python -m bench.faust_*` does)."""
    faust.Worker(app, loglevel="warning").execute_from_commandline()


def plain_faust_app(settings: Settings) -> faust.App:
    use_event_loop(settings)
    config: dict[str, Any] = {
        k: v
        for k, v in faust_config(settings).items()
        if not k[:1].isupper() and k != "broker_consumer"
    }
    config["datadir"] = "faust-data"
    return faust.App(settings.app_id, **config)
