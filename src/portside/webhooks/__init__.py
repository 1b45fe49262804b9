"""Per-project webhooks (Harbor's model): policies say which events of a project go to
which URL, in which payload format, signed with which secret.

    policies     the policy store (management API, CLI); targets checked by egress
    payloads     event -> request body (Harbor's default format or CloudEvents 1.0)
    deliveries   one row per (policy, event): queued from the outbox, claimed with a
                 lease, retried with backoff, dead after `webhooks.max_attempts`
    sender       one signed POST of a delivery, and its outcome
    dispatcher   the loop the job workers run in a thread: queue new events, send what
                 is due; and the synchronous test send
"""
