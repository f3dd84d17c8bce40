"""The mutation table of tests/explorer/mutations.py still names code that exists, once each."""

from __future__ import annotations

import pytest

from tests.explorer.mutations import MUTATIONS, ROOT


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_mutation_applies_to_exactly_one_place(name: str) -> None:
    path, old, new = MUTATIONS[name]
    assert old != new
    assert (ROOT / path).read_text().count(old) == 1, f"{name}: update tests/explorer/mutations.py"
