"""kinko.k8s.objects: where each workload kind keeps its PodSpec, and lookups that never raise on odd input."""

from __future__ import annotations

import pytest

from kinko.k8s.objects import POD_SPEC_PATHS, as_list, get_in

CRONJOB = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}}


def test_pod_spec_paths_reach_the_pod_spec() -> None:
    spec = get_in(CRONJOB, *POD_SPEC_PATHS["CronJob"])
    assert spec == {"containers": []}
    assert POD_SPEC_PATHS["Pod"] == ("spec",)
    assert POD_SPEC_PATHS["Deployment"] == ("spec", "template", "spec")


@pytest.mark.parametrize("obj", [None, [], "text", {"spec": None}, {"spec": []}, {"spec": {"jobTemplate": 3}}])
def test_get_in_returns_none_when_something_on_the_way_is_not_a_mapping(obj: object) -> None:
    assert get_in(obj, "spec", "jobTemplate", "spec") is None


def test_as_list_keeps_lists_only() -> None:
    assert as_list([1, 2]) == [1, 2]
    assert as_list({"a": 1}) == [] and as_list(None) == [] and as_list("ab") == []
