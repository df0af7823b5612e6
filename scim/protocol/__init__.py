"""The SCIM 2.0 protocol layer (RFC 7643/7644) on django-scim2's adapters and schemas.

Imports run one way: ``router`` -> ``users`` / ``groups`` / ``discovery`` -> ``writes`` /
``paging`` -> ``projection`` / ``documents`` -> ``context``. Nothing here imports ``router``, and
django-scim2's settings name the adapters in ``users`` and ``groups`` directly.

- ``router``: the one entry point ``scim_endpoint`` (authenticate, route, map errors, log hook).
- ``context``: ``Ctx`` (request, workspace, actor, base URL, JSON body) and ``json_response``.
- ``users`` / ``groups``: each endpoint with its django-scim2 adapter.
- ``discovery``: ServiceProviderConfig, ResourceTypes, Schemas.
- ``writes``: If-Match and the DELETE/PUT/PATCH path Users and Groups share.
- ``paging``: startIndex/count, sorting, ListResponse, SearchRequest.
- ``projection``: Membership/Team -> SCIM document, attributes/excludedAttributes.
- ``documents``: request bodies and PATCH operations validated against the served schemas.
"""
