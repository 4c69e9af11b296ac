"""`kinko agent`: render secrets into files from a YAML config, keep them current, and exit cleanly on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from kinko.cli._common import handle_errors
from kinko.errors import KinkoError


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kinko agent: %(message)s"))
    agent_log = logging.getLogger("kinko.agent")
    agent_log.handlers[:] = [handler]
    agent_log.setLevel(level.upper())
    agent_log.propagate = False


@click.command("agent")
@click.option("--config", "config_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Agent YAML: address, token_file or kubernetes {role, jwt_file}, files, exec or signal.")
@click.option("--once", is_flag=True, help="Render once and exit (non-zero on failure); for init containers.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@handle_errors
def cli(config_file: str, once: bool, log_level: str) -> None:
    """Render secrets into 0400 files (atomic swap), re-check every interval, run a hook when they change."""
    from kinko.deliver.agent import Agent, load_config

    _setup_logging(log_level)
    agent = Agent(load_config(Path(config_file), os.environ), environ=os.environ)
    try:
        if once:
            try:
                agent.cycle()
            except (KinkoError, OSError):
                raise  # handle_errors prints one line and exits 1
            except Exception as exc:  # the type only: a message or traceback could carry response data
                click.echo(f"error: internal: {type(exc).__name__}", err=True)
                sys.exit(1)
            return
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        sys.exit(agent.run(stop))
    finally:
        agent.fetcher.close()
