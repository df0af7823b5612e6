"""A development-only identity provider, served by the portal under DEBUG, so SSO can be tried on one machine.

``/dev-idp/<slug>/metadata/`` publishes it; ``/dev-idp/<slug>/sso/`` takes Gatehouse's AuthnRequest (Redirect
binding), asks "Sign in as:" and answers a real signed SAML Response, made by pysaml2's IdP (``saml2.server.Server``)
with a key generated once under ``DATA_DIR/dev-idp/``. It is mounted only when DEBUG is on (``config/urls.py``) and
every view answers 404 unless DEBUG is on: it authenticates nobody and would sign whatever email it is given.
``manage.py dev_idp_configure <slug>`` points a workspace's SSO at it, through the audited settings service.
"""
