"""Callbacks the adapter owes an app, and how they reach it.

`outbox` (durable, ordered, once-per-event delivery; its `events` ids, `retry` policy, `lease`
claims and `worker`), `owed_requests` (requests a killed call still owes), the webhook client
(`webhook_client`, its `webhook_results`), `signature` (``X-Twilio-Signature``), `egress` (which
networks requests may reach), `connection_overrides` (Twilio's ``#ct=..&rt=..`` fragment) and
the ``twiml-adapter callbacks`` command (`cli`).
"""
