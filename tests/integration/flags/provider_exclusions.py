"""Provider-suite scenarios this project does not run, each with its reason and evidence.

The provider suite (flagd-testbed ``gherkin/``) runs the real
``openfeature-provider-flagd`` against a ``configsvc serve`` process in RPC
mode and in in-process mode (fed by ``flagd.sync.v1``). Upstream drives it
through a "launchpad" that restarts flagd, serves TLS and unix sockets and
answers PERMISSION_DENIED; scenarios needing those, and scenarios whose
outcome is decided by the provider's own in-process evaluator where it
deviates from the testbed, are listed here. The test module turns every entry
into a skip with this reason, so the test report lists each one.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Tags whose scenarios are excluded whatever the mode: tag -> reason.
BY_TAG: dict[str, str] = {
    "grace": "restarts the server for N seconds and checks the provider's stale/grace timers "
    "(launchpad behaviour; timing-based, and this project has no timing assertions)",
    "reconnect": "stops and restarts the server mid-scenario (launchpad behaviour, timing-based)",
    "unavailable": "needs a provider pointed at a port nothing listens on and an error within "
    "N ms: a provider timing test with no server behaviour",
    "customCert": "TLS with the testbed's certificates: the dev server listens in plaintext",
    "unixsocket": "unix-socket listener: the server listens on TCP only",
    "deprecated": "the testbed marks this suite deprecated: it expects FLAG_NOT_FOUND for a "
    "flag without default variant, which @no-default-variant (run, passing) "
    "replaced with reason DEFAULT and the caller's default",
}

#: Single scenarios (by name) without a tag to go by: name -> reason.
BY_SCENARIO: dict[str, str] = {
    "Provider events chain ready -> error -> ready": (
        "loses the connection for 3 s (launchpad restart) and checks the provider's error "
        "timer; timing-based"
    ),
    "Stale and Error stage": "loses the connection for 6 s (launchpad restart) and checks the "
    "provider's stale/error timers; timing-based",
}

#: Whole feature files that exercise the provider alone: file name -> reason.
BY_FEATURE: dict[str, str] = {
    "config.feature": "the provider's option and environment-variable parsing; no server is "
    "involved",
}


@dataclass(frozen=True)
class ModeExclusion:
    """Scenarios (by tag) that fail in one resolver mode for a reason outside the server."""

    mode: str
    tag: str
    reason: str


BY_MODE: tuple[ModeExclusion, ...] = (
    ModeExclusion(
        "in-process",
        "fractional-v1",
        "in-process evaluation is the provider's own (openfeature-flagd-core 2.0.0), which "
        "buckets a CBOR encoding (the testbed's @fractional-v3); evidence: "
        "test_evaluator.py::test_library_fractional_deviates_from_the_testbed_and_ours_does_not",
    ),
    ModeExclusion(
        "in-process",
        "fractional-v2",
        "in-process evaluation is the provider's own CBOR bucketing (@fractional-v3), not "
        "flagd's v2 formula; same evidence as fractional-v1",
    ),
    ModeExclusion(
        "rpc",
        "fractional-v3",
        "CBOR bucketing is not offered by the server: issue #8 fixes flagd's high-precision "
        "bucketing (v2) as the default and the legacy one (v1) as the per-flag-set option",
    ),
)
