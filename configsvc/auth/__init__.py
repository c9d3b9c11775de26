"""Authentication, authorization, rate limits and TLS for every RPC.

One function (``admission.Admission.admit``, no gRPC in it) admits every call,
whichever transport carries it: authenticate (API key, JWT bearer token or mTLS
client certificate) -> per-identity rate limit -> check the method's rule in
``rules`` against the scope taken from the request -> per-RPC hooks (tenant
quotas). The ``grpc.aio`` server interceptor (``guard``) calls it for every RPC,
unary or streaming, whoever registered the service, and adds the stream cap;
OFREP and ``/metrics`` call it through ``AuthRuntime.admit_http``. Deny by
default: a method without a rule answers PERMISSION_DENIED. Keys and role
bindings are records under ``<root>/sys/`` that the mirror already follows, so
checks never leave the process and changes reach open streams at once.
"""
