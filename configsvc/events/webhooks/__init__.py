"""Webhooks: change events POSTed to registered HTTP receivers.

* ``allowlist``: which hosts a webhook may point at (checked at registration
  and again before every request);
* ``signing``: the HMAC-SHA256 signature header and its verification;
* ``store``: where webhooks, deliveries and the retry queue live in etcd;
* ``sender``: one HTTP POST, without following redirects;
* ``dispatch``: the elected dispatcher that queues a delivery per matching
  webhook (tail -> etcd), and the worker that sends, retries and dead-letters.
"""
