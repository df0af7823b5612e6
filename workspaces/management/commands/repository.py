"""Automate the repository page: ``repository SLUG NAME [--create] [--environment ENV] [--grant team:NAME=write] [--revoke member:EMAIL]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.exceptions import ServiceError
from workspaces.models import Repository, RepositoryGrant

from ._helpers import command_actor, get_member, get_team, get_workspace


class Command(BaseCommand):
    help = "Create a repository and give or take team and member grants (read, write, admin)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--create", action="store_true")
        parser.add_argument("--environment", default="")
        parser.add_argument("--grant", action="append", default=[], metavar="team:NAME=PERM|member:EMAIL=PERM")
        parser.add_argument("--revoke", action="append", default=[], metavar="team:NAME|member:EMAIL")

    def _grantee(self, workspace, spec: str) -> dict:
        kind, _, who = spec.partition(":")
        if kind == "team" and who:
            return {"team": get_team(workspace, who)}
        if kind == "member" and who:
            return {"membership": get_member(workspace, who)}
        raise CommandError(f"Say who gets the grant as team:NAME or member:EMAIL (got {spec!r}).")

    def handle(self, *args, slug: str, name: str, **o) -> None:
        workspace = get_workspace(slug)
        actor = command_actor("repository")
        repo: Repository | None
        try:
            if o["create"]:
                repo = services.repository_create(workspace=workspace, name=name, environment=o["environment"], actor=actor)
            else:
                repo = Repository.objects.filter(workspace=workspace, name__iexact=name).first()
                if repo is None:
                    raise CommandError(f"No repository {name!r} in {slug}. Create it with --create.")
            for spec in o["grant"]:
                who, _, perm = spec.rpartition("=")
                services.repository_grant(repository=repo, permission=perm, actor=actor, **self._grantee(workspace, who))
            for spec in o["revoke"]:
                grant = RepositoryGrant.objects.filter(repository=repo, **self._grantee(workspace, spec)).first()
                if grant is None:
                    raise CommandError(f"{spec} has no grant on {repo.name}.")
                services.repository_revoke_grant(grant=grant, actor=actor)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        grants = ", ".join(f"{g.grantee_label}={g.permission}" for g in repo.grants.select_related("team", "membership__user")) or "no grants"
        self.stdout.write(f"Repository {repo.name!r} in {slug} ({repo.environment or 'no environment'}): {grants}")
