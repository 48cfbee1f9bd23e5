"""A catalog image may be written with a tag that names the built-in server (`latest`, or
this Berth's version); any other tag, or a digest, is refused naming the field."""

from __future__ import annotations

import pytest

from berth import __version__
from berth.catalog import CATALOG, catalog_entry
from berth.controller.launch import effective_probes, launch_spec
from berth.domain.errors import SpecInvalid
from berth.domain.validation import split_catalog_image, validate
from tests.fakes.builders import deployment, facts, replica

SPEC = {"name": "echo", "containers": [{"region": "local", "scale": {"min": 1, "max": 1}}]}


@pytest.mark.parametrize(("image", "parts"), [
    ("catalog/echo", ("catalog/echo", None, None)),
    ("catalog/echo:latest", ("catalog/echo", "latest", None)),
    ("catalog/echo@sha256:ab", ("catalog/echo", None, "sha256:ab")),
    ("catalog/echo:1@sha256:ab", ("catalog/echo", "1", "sha256:ab")),
])
def test_split_catalog_image(image: str, parts: tuple[str, str | None, str | None]) -> None:
    assert split_catalog_image(image) == parts


@pytest.mark.parametrize("image", ["catalog/echo", "catalog/echo:latest",
                                   f"catalog/echo:{__version__}"])
def test_catalog_image_with_its_own_tag_runs_the_built_in_server(image: str) -> None:
    spec = validate({**SPEC, "image": image}, facts())
    assert spec.image == image  # kept as written
    assert catalog_entry(image) is CATALOG["catalog/echo"]
    d = deployment(1, image=image)
    assert launch_spec(d, replica(d, "r1")).command == CATALOG["catalog/echo"].command()
    assert effective_probes(d.spec) == CATALOG["catalog/echo"].probes


@pytest.mark.parametrize(("image", "says"), [
    ("catalog/echo:v9", "tag 'v9'"),
    ("catalog/echo:", "tag ''"),
    ("catalog/echo@sha256:" + "a" * 64, "a digest"),
    ("catalog/echo:latest@sha256:" + "a" * 64, "a digest"),
])
def test_other_tags_and_digests_are_refused_naming_the_field(image: str, says: str) -> None:
    with pytest.raises(SpecInvalid) as info:
        validate({**SPEC, "image": image}, facts())
    [v] = info.value.violations
    assert (v.field, v.rule) == ("image", "catalog_tag")
    assert says in v.message and "catalog/echo:latest" in v.message
    assert catalog_entry(image) is None


def test_an_unknown_catalog_image_with_a_tag_is_unknown() -> None:
    with pytest.raises(SpecInvalid) as info:
        validate({**SPEC, "image": "catalog/nope:latest"}, facts())
    [v] = info.value.violations
    assert (v.field, v.rule) == ("image", "known_catalog_image")
    assert "'catalog/nope'" in v.message
