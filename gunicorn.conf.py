"""gunicorn's settings for Gatehouse: read by gunicorn when started from the repository root (its default
``--config``), as ``scripts/cluster`` and docs/deploy.md start it. Flags on the command line still win."""


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    # Close each connection at once unless the request left bytes unread (config/serving.py says why).
    from config.serving import install

    install(worker)
