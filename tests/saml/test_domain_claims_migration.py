"""saml.0007_domain_claims: each SSO email domain becomes a pending claim of its workspace, which routes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("saml", "0006_last_sso_backfill")]
AFTER = [("saml", "0007_domain_claims")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_sso_email_domains_become_pending_claims_and_their_rows_go():
    try:
        old = _migrate(BEFORE)
        Workspace = old.get_model("workspaces", "Workspace")
        SamlSettings = old.get_model("saml", "SamlSettings")
        SsoEmailDomain = old.get_model("saml", "SsoEmailDomain")
        acme = Workspace.objects.create(slug="acme", name="Acme")
        other = Workspace.objects.create(slug="other", name="Other")
        cfg = SamlSettings.objects.create(workspace=acme, idp_entity_id="https://idp.acme.test")
        other_cfg = SamlSettings.objects.create(workspace=other, idp_entity_id="https://idp.other.test")
        SsoEmailDomain.objects.create(saml_settings=cfg, domain="acme.test")
        SsoEmailDomain.objects.create(saml_settings=cfg, domain="bücher.test")
        SsoEmailDomain.objects.create(saml_settings=other_cfg, domain="other.test")

        new = _migrate(AFTER)
        DomainClaim = new.get_model("workspaces", "DomainClaim")
        claims = sorted(DomainClaim.objects.values_list("workspace__slug", "domain", "verified_at"))
        assert claims == [("acme", "acme.test", None), ("acme", "xn--bcher-kva.test", None),
                          ("other", "other.test", None)]
        tokens = list(DomainClaim.objects.values_list("token", flat=True))
        assert len(set(tokens)) == 3 and all(len(t) == 32 for t in tokens)
        assert not DomainClaim.objects.filter(expires_at__isnull=True).exists()
        with connection.cursor() as cursor:  # the table stays for the previous release, empty
            cursor.execute("SELECT COUNT(*) FROM saml_ssoemaildomain")
            assert cursor.fetchone()[0] == 0
        if connection.vendor == "postgresql":
            # A row the previous release writes during the rollout no longer blocks deleting the SSO settings.
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO saml_ssoemaildomain (saml_settings_id, domain) VALUES (%s, 'late.test')",
                               [other_cfg.pk])
            new.get_model("saml", "SamlSettings").objects.filter(pk=other_cfg.pk).delete()
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
