"""Where the official flagd conformance data lives: ``../shared/conformance`` beside the repo."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONFORMANCE = REPO.parent / "shared" / "conformance"
TESTBED = CONFORMANCE / "flagd-testbed"
SCHEMA_TESTS = CONFORMANCE / "flagd-schemas" / "json" / "test"
EVALUATOR_FLAGS = TESTBED / "evaluator" / "flags" / "testkit-flags.json"
