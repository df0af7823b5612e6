"""Every page each role can reach, checked by axe-core in a real browser: no serious or critical violations.

The pages come from what the role is shown: the links of its workspace navigation, plus the detail pages those
lead to (a member, a team, a repository, an audit event), its own two-factor page, and the pages anyone reaches
(sign-in, break-glass, 403, 404). axe-core is the npm package pinned in package-lock.json (`npm ci`, which
`bash scripts/test` runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.models import AuditEvent
from tests.factories import RepositoryFactory, TeamFactory
from workspaces.services import (
    access_review_complete,
    access_review_decide,
    access_review_start,
    actor_for_membership,
)

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}


@pytest.fixture
def axe_page(browser, live_server):
    """A page whose context bypasses the Content-Security-Policy. Only here: axe-core is injected as a script the
    portal did not serve, which `script-src 'self'` rightly refuses; the pages under test are otherwise unchanged."""
    if not AXE.exists():
        pytest.fail(f"axe-core not found at {AXE}: run `bash scripts/test` or `npm ci` at the repository root.")
    context = browser.new_context(base_url=live_server.url, bypass_csp=True)
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as loaded: serious and critical ones are returned, the others printed."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    blocking = []
    for v in result["violations"]:
        line = f"{page.url}: [{v['impact']}] {v['id']}: {v['help']} -> " + "; ".join(
            n["target"][0] if isinstance(n["target"][0], str) else str(n["target"]) for n in v["nodes"][:5]
        )
        print(line)
        if v["impact"] in BLOCKING:
            blocking.append({"id": v["id"], "help": v["help"], "where": line})
    return blocking


def _nav_paths(page) -> list[str]:
    hrefs = page.eval_on_selector_all("nav[aria-label=Workspace] a", "els => els.map(a => a.getAttribute('href'))")
    return [h.split("#")[0] for h in hrefs]


def _check(page, paths: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in dict.fromkeys(paths):  # each page once, in order
        response = page.goto(path)
        print(path, response.status if response else None)
        blocking = axe_violations(page)
        if blocking:
            found[path] = blocking
    return found


@pytest.fixture
def alpha_pages(world):
    """Detail pages in workspace alpha: a team, a repository, an audit event, members of each role."""
    team = TeamFactory(workspace=world.a, name="Platform")
    repo = RepositoryFactory(workspace=world.a, name="gatehouse")
    return {
        "team": f"/w/alpha/teams/{team.pk}/",
        "repository": f"/w/alpha/repositories/{repo.pk}/",
        "owner": f"/w/alpha/members/{world.owner_a.pk}/",
        "member": f"/w/alpha/members/{world.member_a.pk}/",
    }


ROLES = {
    "owner": "owner@alpha.test",
    "manager": "manager@alpha.test",
    "member": "member@alpha.test",
    "auditor": "member@alpha.test",  # a Member with is_auditor set, below
    "collaborator": "collab@alpha.test",
}


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_reaches_has_no_serious_accessibility_violation(
    axe_page, world, alpha_pages, password, role, width
):
    """At 390 px the navigation and the tables are laid out differently (wrapped links, tables that scroll)."""
    if role == "auditor":
        world.member_a.is_auditor = True
        world.member_a.save(update_fields=["is_auditor"])
    axe_page.set_viewport_size({"width": width, "height": 800})
    sign_in(axe_page, ROLES[role], password)
    axe_page.goto("/w/alpha/")
    # Detail pages a role may not open answer 404 (a Collaborator and another member's page): checked as seen.
    paths = ["/w/alpha/", *_nav_paths(axe_page), *alpha_pages.values(), "/account/2fa/"]
    if role in ("auditor", "owner"):
        axe_page.goto("/w/alpha/audit/")
        event = AuditEvent.objects.filter(workspace=world.a).order_by("-pk").first()
        assert event is not None
        paths += [f"/w/alpha/audit/{event.pk}/", "/w/alpha/audit/?action=login"]
        # An access review, open (decision radios and notes) and completed (outcomes).
        actor = actor_for_membership(world.owner_a, "password")
        open_review = access_review_start(workspace=world.a, actor=actor, name="Q4 open", scope_kind="workspace")
        done = access_review_start(workspace=world.a, actor=actor, name="Q4 done", scope_kind="workspace")
        for item in done.items.all():
            access_review_decide(item=item, decision="keep", actor=actor)
        access_review_complete(review=done, actor=actor)
        paths += [f"/w/alpha/reviews/{open_review.pk}/", f"/w/alpha/reviews/{done.pk}/"]
    if role == "owner":
        paths += ["/w/alpha/members/add/", "/w/alpha/settings/provisioning/requests/", "/w/alpha/settings/sso/test/"]
    found = _check(axe_page, paths)
    assert not found, found


def test_the_check_reports_a_serious_violation_when_a_page_has_one(axe_page, world):
    """The check itself: a field without a label (critical for axe) is found, so a clean result means something."""
    axe_page.goto("/login/")
    axe_page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text name=unlabelled>')")
    assert [v["id"] for v in axe_violations(axe_page)] == ["label"]


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_anyone_reaches_have_no_serious_accessibility_violation(axe_page, world, password, width):
    axe_page.set_viewport_size({"width": width, "height": 800})
    found = _check(axe_page, ["/login/", "/saml/alpha/break-glass/", "/", "/w/alpha/"])
    assert not found, found


def test_the_forbidden_page_has_no_serious_accessibility_violation(axe_page, world, password):
    sign_in(axe_page, "member@alpha.test", password)
    response = axe_page.goto("/w/alpha/members/add/")
    assert response is not None and response.status == 403
    assert not axe_violations(axe_page)


def test_the_not_found_page_has_no_serious_accessibility_violation(axe_page, world, password):
    sign_in(axe_page, "member@alpha.test", password)
    response = axe_page.goto("/w/bravo/")  # another workspace's page: 404, as for a page that does not exist
    assert response is not None and response.status == 404
    assert not axe_violations(axe_page)
