"""configsvc: an etcd-native gRPC configuration server."""

__version__ = "0.1.0"
