"""Redis replies read as text, from a client that answers bytes or one that decodes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach.store.replies import text_fields

_TEXT = st.text(max_size=10)


@given(st.dictionaries(_TEXT, _TEXT, max_size=6), st.sampled_from(["bytes", "str", "mixed"]))
def test_a_hash_reads_as_the_same_text_from_either_kind_of_client(fields, kind):
    def encode(value: str, position: int) -> str | bytes:
        as_bytes = kind == "bytes" or (kind == "mixed" and position % 2 == 0)
        return value.encode() if as_bytes else value

    raw = {encode(k, 0): encode(v, i + 1) for i, (k, v) in enumerate(fields.items())}
    assert text_fields(raw) == fields


def test_a_field_that_is_no_text_is_refused():
    with pytest.raises(TypeError, match="should be text"):
        text_fields({b"attempts": 3})
