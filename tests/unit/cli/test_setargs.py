"""`--set key=value` into a JSON merge patch."""

from __future__ import annotations

import pytest

from berth.cli.setargs import SetArgError, parse_set_args


def test_parse_set_nested_and_typed() -> None:
    patch = parse_set_args([
        "envs.FOO=bar", "envs.VERSION=1.0", "envs.OLD=null", "per_worker=4",
        "description=two words", "containers=[{region: local, scale: {min: 1, max: 2}}]",
        "ingress.disable_response_buffering=true", "resources.cpu=0.5", "labels.team=",
    ])
    assert patch == {
        "envs": {"FOO": "bar", "VERSION": "1.0", "OLD": None},
        "per_worker": 4,
        "description": "two words",
        "containers": [{"region": "local", "scale": {"min": 1, "max": 2}}],
        "ingress": {"disable_response_buffering": True},
        "resources": {"cpu": 0.5},
        "labels": {"team": ""},
    }


def test_parse_set_later_wins_and_json_values() -> None:
    assert parse_set_args(["timeout=1", "timeout=~"]) == {"timeout": None}
    assert parse_set_args(['command=["python", "-m", "x"]', "image=repo/img:1.2"]) == {
        "command": ["python", "-m", "x"], "image": "repo/img:1.2",
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["containers[0].scale.max=2"], "list indices are not supported"),
        (["envs.FOO"], "expected key=value"),
        (["envs..FOO=1"], "dotted names"),
        (["=1"], "dotted names"),
        (["per_worker=4", "per_worker.x=1"], "conflicts with the earlier --set per_worker"),
        (["command=[unclosed"], "not valid YAML"),
    ],
)
def test_parse_set_errors(items: list[str], message: str) -> None:
    with pytest.raises(SetArgError, match=message):
        parse_set_args(items)
