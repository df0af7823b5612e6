"""Email domains for /login/ discovery move to workspaces.DomainClaim, where they must be verified by DNS.

Each SsoEmailDomain row becomes a *pending* claim of its workspace (a fresh token, expiring after
DOMAIN_CLAIM_PENDING_DAYS): it no longer routes /login/ until an Owner publishes the TXT record and verifies it
(docs/saml.md, "Verified domains", upgrade note). The rows are deleted and the model leaves Django's state, but the
table saml_ssoemaildomain stays for the release still running during a rolling upgrade (dropping it would break
that release's /login/); a later release drops it.
"""

import secrets
from datetime import timedelta

import idna
from django.conf import settings
from django.db import migrations
from django.utils import timezone


def _normalised(domain):
    text = domain.strip().lstrip("@").rstrip(".")
    try:
        return idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return ""


def domains_to_claims(apps, schema_editor):
    SsoEmailDomain = apps.get_model("saml", "SsoEmailDomain")
    DomainClaim = apps.get_model("workspaces", "DomainClaim")
    now = timezone.now()
    expires_at = now + timedelta(days=getattr(settings, "DOMAIN_CLAIM_PENDING_DAYS", 7))
    rows = SsoEmailDomain.objects.select_related("saml_settings").order_by("pk")
    for row in rows.iterator():
        domain = _normalised(row.domain)
        workspace_id = row.saml_settings.workspace_id
        if not domain or DomainClaim.objects.filter(workspace_id=workspace_id, domain=domain).exists():
            continue
        DomainClaim.objects.create(
            workspace_id=workspace_id, domain=domain, token=secrets.token_hex(16), created_at=now,
            expires_at=expires_at,
        )
    # The rows go with the model: their foreign key (no longer known to Django, so not cascaded) would otherwise
    # refuse the deletion of the SAML settings or workspace they name.
    SsoEmailDomain.objects.all().delete()


def claims_to_domains(apps, schema_editor):
    """Back to first come, first served: each pending or verified claim routes again (verified ones first)."""
    SsoEmailDomain = apps.get_model("saml", "SsoEmailDomain")
    SamlSettings = apps.get_model("saml", "SamlSettings")
    DomainClaim = apps.get_model("workspaces", "DomainClaim")
    taken = set(SsoEmailDomain.objects.values_list("domain", flat=True))
    for claim in DomainClaim.objects.order_by("verified_at", "created_at"):
        cfg = SamlSettings.objects.filter(workspace_id=claim.workspace_id).first()
        if cfg is None or claim.domain in taken:
            continue
        SsoEmailDomain.objects.create(saml_settings=cfg, domain=claim.domain)
        taken.add(claim.domain)


def release_the_old_table(apps, schema_editor):
    """Drop saml_ssoemaildomain's foreign key on PostgreSQL. Django no longer knows the table, so nothing cascades
    to it, and a TRUNCATE of saml_samlsettings (the test suite's flush) is refused while a table references it.
    The previous release's nodes may still write rows during the rollout; unchecked, they harm nothing. (On SQLite
    the table is empty and nothing truncates.)"""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        """
        DO $$
        DECLARE fk record;
        BEGIN
            FOR fk IN SELECT conname FROM pg_constraint
                      WHERE conrelid = 'saml_ssoemaildomain'::regclass AND contype = 'f' LOOP
                EXECUTE format('ALTER TABLE saml_ssoemaildomain DROP CONSTRAINT %I', fk.conname);
            END LOOP;
        END $$;
        """,
        None,  # no parameters: %I is PL/pgSQL's format(), not a placeholder
    )


class Migration(migrations.Migration):

    dependencies = [
        ("saml", "0006_last_sso_backfill"),
        ("workspaces", "0008_domain_claims"),
    ]

    operations = [
        migrations.RunPython(domains_to_claims, claims_to_domains),
        migrations.RunPython(release_the_old_table, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SsoEmailDomain")],
            database_operations=[],
        ),
    ]
