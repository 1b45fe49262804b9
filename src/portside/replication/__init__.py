"""Replication: copying artifacts between Portside and other registries by rule.

    rules     RuleStore: the rules (filters, destination, trigger), admins manage them
    naming    destination namespace and Harbor's flattening
    engine    what a run shares: services, reporting, filters, the tally
    pushing   Pusher: local -> endpoint (walks artifacts; children first; referrers)
    pulling   Puller: endpoint -> local, through the content services
    runs      Runs: a run's rule and trigger, and its per-artifact results
    throttle  the per-rule bandwidth limit
    run       replicate(): one run of one rule, as the `replication` job does it

The job kind, the outbox consumer that queues event runs, and the schedules of
scheduled rules are in portside.jobs.replication (the jobs layer, above this one).
"""
