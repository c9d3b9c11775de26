"""Change events: the audit trail published to Pulsar, and webhooks.

Every change already commits its audit record in its own etcd transaction
(the outbox). One elected publisher per installation tails those records in
revision order, turns each into a ``ConfigurationUpdatedEvent`` and publishes
it; its cursor in etcd moves only after the broker acknowledged, so an
outage of Pulsar or of the publisher delays events but never loses one.
"""
