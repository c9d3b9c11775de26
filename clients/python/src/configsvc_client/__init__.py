"""configsvc client: a watched local cache with hot reload and last-known-good fallback.

::

    async with ConfigClient.connect("configsvc:50051", selectors=[
            Selector(tenant="acme", environment="prod", service="api")]) as client:
        pool = client.get_int("acme/prod/api/db.pool.max", 10)
        client.subscribe("acme/prod/api/db.", on_change, prefix=True)

See ``README.md`` for the cache, staleness and last-known-good model.
"""

from configsvc_client.auth import bearer_metadata, tls_credentials
from configsvc_client.backoff import Backoff
from configsvc_client.client import ClientSettings, ConfigClient
from configsvc_client.errors import (
    AlreadyExistsError,
    ChangesOverflowError,
    ClientClosedError,
    ConfigError,
    ConfigTypeError,
    ConfigUnavailableError,
    ConflictError,
    DeadlineExceededError,
    ErrorDetails,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    KeyNotWatchedError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from configsvc_client.events import EventConsumer, EventDeduplicator, ReceivedEvent
from configsvc_client.keys import Key, KeyPrefix, Selector
from configsvc_client.model import Change, ChangeType, DeleteResult, Entry
from configsvc_client.status import Stats, Status
from configsvc_client.subscriptions import ChangeStream, Subscription
from configsvc_client.sync import SyncConfigClient

__all__ = [
    "AlreadyExistsError",
    "Backoff",
    "Change",
    "ChangeStream",
    "ChangeType",
    "ChangesOverflowError",
    "ClientClosedError",
    "ClientSettings",
    "ConfigClient",
    "ConfigError",
    "ConfigTypeError",
    "ConfigUnavailableError",
    "ConflictError",
    "DeadlineExceededError",
    "DeleteResult",
    "Entry",
    "ErrorDetails",
    "EventConsumer",
    "EventDeduplicator",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "Key",
    "KeyNotWatchedError",
    "KeyPrefix",
    "NotFoundError",
    "PermissionDeniedError",
    "ReceivedEvent",
    "ResourceExhaustedError",
    "Selector",
    "Stats",
    "Status",
    "Subscription",
    "SyncConfigClient",
    "UnauthenticatedError",
    "UnavailableError",
    "bearer_metadata",
    "tls_credentials",
]

__version__ = "0.1.0"
