"""Authentication, authorization, rate limits and TLS for every RPC.

One ``grpc.aio`` server interceptor (``guard``) admits every call, unary or
streaming, whoever registered the service: authenticate (API key, JWT bearer
token or mTLS client certificate) -> check the method's rule in ``rules``
against the scope taken from the request -> per-identity rate limit and
stream cap -> per-RPC hooks (tenant quotas). Deny by default: a method
without a rule answers PERMISSION_DENIED. Keys and role bindings are records
under ``<root>/sys/`` that the mirror already follows, so checks never leave
the process and changes reach open streams at once.
"""
