"""The django-scim2 adapter names ``config/settings.py`` gives in ``SCIM_SERVICE_PROVIDER``.

The adapters live with their endpoints in ``scim.protocol.users`` and ``scim.protocol.groups``;
this module keeps the dotted paths django-scim2 loads (``USER_ADAPTER``, ``GROUP_ADAPTER``,
``USER_MODEL_GETTER``) importable.
"""

from __future__ import annotations

from .protocol.groups import GatehouseSCIMGroup
from .protocol.users import GatehouseSCIMUser, membership_model

__all__ = ["GatehouseSCIMGroup", "GatehouseSCIMUser", "membership_model"]
