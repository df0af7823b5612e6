"""Deprovisioning: after a member is deactivated or removed (or an account disabled), revoke what they held.

- ``outbox``: the ``DeprovisionJob`` row written in the deactivating transaction, and re-queueing a failed one.
- ``tasks``: the Celery shells (publishing in chunks, coalescing bursts, the beat sweeper).
- ``runner``: claims jobs and runs them in batches, recording each job's outcome.
- ``revoke``: what a job revokes (session grants, personal API keys, OAuth tokens) and its audit event.

Imports run outbox -> tasks -> runner -> revoke; ``workspaces.services`` calls into this package,
never the other way round.
"""
