"""Vulnerability scanning as a service: scanners (the `Scanner` interface, external
Harbor scanner adapters), scan records and their findings, project scan settings and
allowlists, and SBOM referrers. The job that runs scans and the outbox consumer that
queues them live in portside.jobs.scan; the pull policy in portside.content.vulnerability.
"""
