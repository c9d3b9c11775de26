"""Hierarchy features on top of the store: records, validation on write, resolution.

- ``records``: how schemas, rules, templates, extends lists and environments
  are stored in etcd (JSON records under ``<root>/t/<tenant>/<kind>/``).
- ``state``: the per-tenant view built from the mirror's records, cached until
  a record listener sees a change to that tenant's records.
- ``resolver``: resolution of (service, environment) from the mirror, with
  templates and proposed changes applied.
- ``guard``: what every config write must pass (schemas, rules, protected
  environments), shared by the write RPCs and the Validate dry run.
- ``promote``: Promote's planning (which keys are copied, what is refused,
  the diff of the target) and its one-Txn write, for every transport.
"""
