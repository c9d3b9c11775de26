"""List filters beyond scope and key prefix: key glob, labels, last author, time changed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from configsvc.errors import InvalidArgumentError
from configsvc.model.labels import validate_labels
from configsvc.v1 import config_pb2
from configsvc.validate.schemas import glob_matcher, pattern_violation

_AUTHOR_MAX = 256


@dataclass(frozen=True)
class ListFilter:
    """The optional filters of a ListRequest, validated; an empty filter matches everything."""

    key_glob: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    updated_by: str = ""
    after_ns: int | None = None
    before_ns: int | None = None
    _matcher: re.Pattern[str] | None = None

    @classmethod
    def of(cls, request: config_pb2.ListRequest) -> ListFilter:
        glob = request.key_glob
        if glob:
            violation = pattern_violation(glob, "key_glob")
            if violation:
                raise InvalidArgumentError([violation])
        if len(request.updated_by) > _AUTHOR_MAX:
            raise InvalidArgumentError.single(
                "updated_by", f"is longer than {_AUTHOR_MAX} characters"
            )
        after = request.updated_after.ToNanoseconds() if request.HasField("updated_after") else None
        before = (
            request.updated_before.ToNanoseconds() if request.HasField("updated_before") else None
        )
        if after is not None and before is not None and after >= before:
            raise InvalidArgumentError.single("updated_before", "must be later than updated_after")
        return cls(
            glob,
            validate_labels(request.labels),
            request.updated_by,
            after,
            before,
            glob_matcher(glob) if glob else None,
        )

    def token_scope(self) -> tuple[str, ...]:
        """What a page token must be bound to, so a token only works with the same filters.

        Empty without filters, so tokens of unfiltered lists stay as they were.
        """
        if self == ListFilter():
            return ()
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        return (self.key_glob, labels, self.updated_by, str(self.after_ns), str(self.before_ns))

    def matches(self, entry: config_pb2.ConfigEntry) -> bool:
        if self._matcher is not None and not self._matcher.fullmatch(entry.key.key):
            return False
        if self.updated_by and entry.updated_by != self.updated_by:
            return False
        if self.after_ns is not None or self.before_ns is not None:
            changed = entry.update_time.ToNanoseconds()
            if self.after_ns is not None and changed < self.after_ns:
                return False
            if self.before_ns is not None and changed >= self.before_ns:
                return False
        return all(entry.labels.get(k) == v for k, v in self.labels.items())
