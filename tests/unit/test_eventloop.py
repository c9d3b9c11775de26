"""The server's event-loop choice (configsvc.server.eventloop)."""

from __future__ import annotations

import argparse
import asyncio

import pytest
import uvloop

from configsvc.cli import options
from configsvc.server import eventloop


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default_and_runs_the_coroutine_on_uvloop() -> None:
    assert eventloop.DEFAULT == "uvloop"
    assert issubclass(eventloop.run(_loop_type(), "uvloop"), uvloop.Loop)


def test_asyncio_choice_runs_on_the_standard_loop() -> None:
    assert not issubclass(eventloop.run(_loop_type(), "asyncio"), uvloop.Loop)


def test_unknown_choice_names_the_flag_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"--event-loop must be one of uvloop, asyncio"):
        eventloop.loop_factory("trio")


def test_serve_accepts_the_flag_and_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parser = argparse.ArgumentParser()
    options.add_server_options(parser)
    assert parser.parse_args([]).event_loop == "uvloop"
    assert parser.parse_args(["--event-loop", "asyncio"]).event_loop == "asyncio"
    monkeypatch.setenv("CONFIGSVC_EVENT_LOOP", "asyncio")
    parser = argparse.ArgumentParser()
    options.add_server_options(parser)
    assert parser.parse_args([]).event_loop == "asyncio"
