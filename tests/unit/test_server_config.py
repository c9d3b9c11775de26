"""Configuration parsing, etcd endpoint targets and structured logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from configsvc.cli.serve import tls_from_paths
from configsvc.server import logs
from configsvc.store.etcd import _target, prefix_range_end


def test_etcd_targets() -> None:
    assert _target(["127.0.0.1:2379"]) == "127.0.0.1:2379"
    assert _target(["http://etcd.local:2379"]) == "etcd.local:2379"
    assert _target(["10.0.0.1:2379", "10.0.0.2:2379"]) == "ipv4:10.0.0.1:2379,10.0.0.2:2379"
    assert _target(["[::1]:2379", "[::2]:2379"]) == "ipv6:[::1]:2379,[::2]:2379"
    with pytest.raises(ValueError, match="IP addresses"):
        _target(["a.local:2379", "b.local:2379"])
    with pytest.raises(ValueError, match="at least one"):
        _target([])


def test_prefix_range_end() -> None:
    assert prefix_range_end(b"/a/") == b"/a0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\0"


def test_tls_paths(tmp_path: Path) -> None:
    assert tls_from_paths("", "", "") is None
    tls = tls_from_paths(str(tmp_path / "ca.pem"), "", "")
    assert tls is not None and tls.ca_file == tmp_path / "ca.pem" and tls.cert_file is None
    with pytest.raises(ValueError, match="both"):
        tls_from_paths("", "cert.pem", "")


def test_json_logs_carry_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", "INFO")
    logging.getLogger("configsvc.test").info(
        "hello %s", "world", extra={"revision": 7, "obj": object()}
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["msg"] == "hello world" and record["revision"] == 7
    assert record["level"] == "info" and record["logger"] == "configsvc.test"
    assert record["ts"].endswith("Z") and "object" in record["obj"]
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("configsvc.test").exception("failed")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "RuntimeError: boom" in record["error"]
    logs.configure("text", "WARNING")
    logging.getLogger("configsvc.test").warning("plain")
    assert "WARNING configsvc.test: plain" in capsys.readouterr().err
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_configsvc", False)]
    assert len(ours) == 1
    root.removeHandler(ours[0])
