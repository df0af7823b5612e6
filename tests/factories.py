"""factory-boy factories for the domain. Memberships are built directly (no audit) for test set-up only."""

from __future__ import annotations

import functools

import factory
from django.conf import settings
from django.contrib.auth.hashers import make_password

from workspaces.models import DomainClaim, Membership, Repository, Team, User, Workspace
from workspaces.roles import Role

TEST_PASSWORD = "correct-horse-battery-staple"  # noqa: S105


def _test_password_hash() -> str:
    """One real hash of TEST_PASSWORD per hasher, reused: hashing per user made the suite several times slower.

    Keyed by the current first hasher, so a test module that switches hashers (override_settings)
    does not leave a hash behind that later tests cannot verify.
    """
    return _hash_with(settings.PASSWORD_HASHERS[0])


@functools.cache
def _hash_with(hasher: str) -> str:
    return make_password(TEST_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.LazyFunction(_test_password_hash)


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    slug = factory.Sequence(lambda n: f"ws{n}")
    name = factory.LazyAttribute(lambda o: f"Workspace {o.slug}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"team-{n}")


class RepositoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repository

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"repo-{n}")


def verified_domain(workspace: Workspace, domain: str) -> DomainClaim:
    """A domain claim already proven (as after a DNS check), whether or not it was claimed before: test set-up
    only, no audit."""
    from django.utils import timezone

    now = timezone.now()
    claim, _ = DomainClaim.objects.update_or_create(
        workspace=workspace, domain=domain,
        defaults={"verified_at": now, "last_checked_at": now, "expires_at": None},
        create_defaults={"token": "t" * 32, "verified_at": now, "last_checked_at": now},
    )
    return claim
