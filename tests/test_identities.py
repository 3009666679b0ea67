"""Every identity in spec.identities is decided by SymPy the way it is stated (true or false)."""
from __future__ import annotations

import pytest

from spec.identities import IDENTITIES, Identity


def test_names_are_unique():
    names = [i.name for i in IDENTITIES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("identity", IDENTITIES, ids=[i.name for i in IDENTITIES])
def test_identity_is_decided_as_stated(identity: Identity):
    assert identity.proof() is identity.holds


@pytest.mark.parametrize("identity", IDENTITIES, ids=[i.name for i in IDENTITIES])
def test_statement_is_a_sentence(identity: Identity):
    assert identity.statement.strip()
    assert identity.name.strip()
