"""The demo's organization reconciliation finds every difference, both ways: a CRM listing
made from the generator's truth is in step, and each edit of it is one mismatch."""

from __future__ import annotations

from typing import Any

import pytest

from auth0_sync_cli.demo_orgs import org_mismatches
from auth0_sync_cli.sample import SampleStream, generate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def sample() -> SampleStream:
    return generate(40, seed=3, organizations=3, specials=False)


def _listing(sample: SampleStream) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    companies, memberships = [], []
    for n, (org_id, truth) in enumerate(sorted(sample.organizations.items())):
        status = "deactivated" if truth.deleted else "active"
        companies.append(
            {
                "id": f"co_{n}",
                "auth0_org_id": org_id,
                "name": truth.name,
                "display_name": truth.display_name,
                "status": status,
            }
        )
        if not truth.deleted:
            memberships += [
                {"company_id": f"co_{n}", "contact_id": f"c_{u}", "roles": sorted(r)}
                for u, r in truth.members.items()
            ]
    return companies, memberships


def test_the_truths_own_listing_is_in_step_and_each_edit_is_one_mismatch(
    sample: SampleStream,
) -> None:
    contact_of = {u: f"c_{u}" for u in sample.people}
    companies, memberships = _listing(sample)
    assert org_mismatches(sample, companies, memberships, contact_of) == []
    assert memberships  # the sample has memberships to edit

    extra = {**memberships[0], "contact_id": "c_nobody"}
    assert len(org_mismatches(sample, companies, [*memberships, extra], contact_of)) == 1
    assert len(org_mismatches(sample, companies, memberships[1:], contact_of)) == 1
    roles = [{**memberships[0], "roles": ["intruder"]}, *memberships[1:]]
    assert len(org_mismatches(sample, companies, roles, contact_of)) == 2  # one gone, one extra
    renamed = [{**companies[0], "name": "edited"}, *companies[1:]]
    assert len(org_mismatches(sample, renamed, memberships, contact_of)) == 1
    deleted = next(i for i, c in enumerate(companies) if c["status"] == "deactivated")
    revived = [{**c, "status": "active"} if i == deleted else c for i, c in enumerate(companies)]
    assert len(org_mismatches(sample, revived, memberships, contact_of)) == 1
    stranger = {"id": "co_x", "auth0_org_id": "org_unknown", "name": "x", "status": "active"}
    assert len(org_mismatches(sample, [*companies, stranger], memberships, contact_of)) == 1
