"""Settings that carry machine rules: `volume_host_paths` into the platform facts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from berth.server import machine_facts
from berth.settings import Settings


def test_volume_host_paths_are_absolute_and_reach_the_facts_resolved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("BERTH_VOLUME_HOST_PATHS", f'["{tmp_path / "link"}"]')
    facts = machine_facts(Settings(gpus=""), runs_images=True)
    assert facts.volume_roots == (str((tmp_path / "real").resolve()),)
    assert facts.host_path(str(tmp_path / "link")) == str((tmp_path / "real").resolve())
    assert facts.host_path(str(tmp_path / "missing")) is None
    assert machine_facts(Settings(gpus="", volume_host_paths=[])).volume_roots == ()
    with pytest.raises(ValidationError, match="must be an absolute path"):
        Settings(volume_host_paths=[Path("models")])
