"""The server's typed settings (components/serving/config.py)."""

from __future__ import annotations

from components.serving.config import VersionPolicy


def test_version_policy():
    assert VersionPolicy().select([1, 3, 2]) == {3}
    assert VersionPolicy(num_versions=2).select([1, 3, 2]) == {2, 3}
    assert VersionPolicy("all").select([1, 2]) == {1, 2}
    assert VersionPolicy("specific", versions=frozenset({1, 9})).select([1, 2]) == {1}
