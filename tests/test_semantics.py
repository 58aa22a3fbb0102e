from __future__ import annotations

import pytest

from bot.semantics import AllowedChanges, SemanticsChanged, check_same_data


def test_a_list_that_loses_its_tag_is_a_change():
    with pytest.raises(SemanticsChanged) as caught:
        check_same_data("job:\n  services: !reference [.db, services]\n", "job:\n  services: [.db, services]\n",
                        AllowedChanges())
    assert str(caught.value) == "the file.job.services: the tag !reference became tag:yaml.org,2002:seq"


def test_a_mapping_that_keeps_its_tag_is_the_same():
    check_same_data("a: !thing {b: c}\n", "a: !thing {b: d}\n", AllowedChanges({("c", "d")}))
