"""Background jobs: persisted in the metadata database, run by workers inside
`portside serve` or by `portside worker`, queued on demand or by cron schedules."""
