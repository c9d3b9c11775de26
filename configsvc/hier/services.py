"""The hierarchy servicers of one server process, ready to register."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import ServiceDescriptor

from configsvc.api.environment_service import EnvironmentService
from configsvc.api.hierarchy_service import HierarchyService
from configsvc.api.template_service import TemplateService
from configsvc.api.validation_service import ValidationService
from configsvc.v1 import environment_pb2, hierarchy_pb2, template_pb2, validation_pb2

if TYPE_CHECKING:
    from configsvc.api.config_service import ServiceLimits
    from configsvc.server.app import ConfigServer

_DESCRIPTORS = (
    validation_pb2.DESCRIPTOR.services_by_name["ValidationService"],
    environment_pb2.DESCRIPTOR.services_by_name["EnvironmentService"],
    template_pb2.DESCRIPTOR.services_by_name["TemplateService"],
    hierarchy_pb2.DESCRIPTOR.services_by_name["HierarchyService"],
)
HIERARCHY_SERVICE_NAMES = tuple(d.full_name for d in _DESCRIPTORS)


def hierarchy_services(server: ConfigServer,
                       limits: ServiceLimits) -> list[tuple[ServiceDescriptor, Any]]:
    """(descriptor, servicer) of every hierarchy service, sharing the server's guard."""
    timeout = limits.request_timeout
    shared = (server.mirror, server.writer, server.keyspace, server.guard)
    return list(zip(_DESCRIPTORS, (
        ValidationService(*shared, timeout),
        EnvironmentService(*shared, timeout),
        TemplateService(*shared, timeout),
        HierarchyService(*shared, server.etcd, timeout, secrets=server.secrets.gateway),
    ), strict=True))
