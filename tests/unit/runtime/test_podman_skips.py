"""Container tests skip with the reason where podman cannot run, and fail on CI instead."""

from __future__ import annotations

import pytest
from tests.containers import podman
from tests.containers.images import bookworm_uris


@pytest.fixture(autouse=True)
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BERTH_CI", raising=False)
    monkeypatch.setattr(podman, "podman_usable", lambda: "podman is not installed")


def test_off_ci_a_test_needing_podman_is_skipped_with_the_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match="podman is not installed"):
        podman.require_podman()


@pytest.mark.parametrize("var", ["CI", "BERTH_CI"])
def test_on_ci_it_fails_instead(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    with pytest.raises(pytest.fail.Exception, match="podman is needed on CI: podman is not"):
        podman.require_podman()


def test_usable_podman_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podman, "podman_usable", lambda: None)
    podman.require_podman()


def test_the_debian_mirror_is_read_from_apt_sources() -> None:
    deb822 = ("Types: deb\n# http://snapshot.debian.org/x\nURIs: http://mirror.example/debian\n"
              "Suites: bookworm bookworm-updates\nComponents: main\n\n"
              "Types: deb\nURIs: http://other.example/ubuntu\nSuites: jammy\n")
    assert bookworm_uris(deb822, deb822=True) == ["http://mirror.example/debian"]
    one_line = ("deb [arch=amd64] http://m.example/debian bookworm main\n"
                "# deb http://x bookworm main\n")
    assert bookworm_uris(one_line, deb822=False) == ["http://m.example/debian"]
