"""The containers.conf Berth needs: rendering, layering like podman, merging, the TOML writer."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from berth.runtime import podman_setup as setup
from berth.runtime.podman_setup import HostFacts

FACTS = HostFacts("/process_api/abc", nofile_hard=20000, nproc_hard=96368)
GOOD: dict[str, dict[str, Any]] = {
    "containers": {"default_ulimits": ["nofile=1024:20000", "nproc=4096:4096"]},
    "engine": {"runtime": "runc", "cgroup_manager": "cgroupfs", "events_logger": "file"},
}


def test_the_memory_cgroup_is_read_from_proc_self_cgroup() -> None:
    v1 = "5:devices:/\n4:memory:/process_api/829b\n3:cpuset:/\n0::/\n"
    assert setup.memory_cgroup_of(v1) == "/process_api/829b"
    assert setup.memory_cgroup_of("4:cpu,memory:/a/b\n") == "/a/b"
    assert setup.memory_cgroup_of("0::/user.slice/x.scope\n") == "/user.slice/x.scope"
    assert setup.memory_cgroup_of("") == "/"


def test_the_cgroup_parent_is_a_child_of_the_servers_own_cgroup() -> None:
    assert setup.berth_cgroup_parent(FACTS) == "/process_api/abc/berth"
    assert setup.berth_cgroup_parent(HostFacts("/", None, None)) == "/berth"


@pytest.mark.parametrize(("nofile", "nproc", "wanted"), [
    (20000, 96368, ["nofile=1024:20000", "nproc=4096:4096"]),
    (None, None, ["nofile=1024:1048576", "nproc=4096:4096"]),
    (512, 100, ["nofile=512:512", "nproc=100:100"]),
    (4_000_000, 10**6, ["nofile=1024:1048576", "nproc=4096:4096"]),
])
def test_ulimits_stay_at_or_below_the_hard_limits(
    nofile: int | None, nproc: int | None, wanted: list[str]
) -> None:
    assert setup.wanted_ulimits(HostFacts("/", nofile, nproc)) == wanted


def test_the_rendered_dropin_is_the_wanted_settings_and_has_no_problem() -> None:
    text = setup.render_dropin(FACTS)
    assert text.startswith("# Written by `berth doctor --fix`")
    assert tomllib.loads(text) == GOOD
    assert setup.find_problems([("drop-in", tomllib.loads(text))], FACTS) == []


def test_nothing_configured_names_every_missing_setting() -> None:
    problems = setup.find_problems([], FACTS)
    assert [(p.table, p.key, p.source) for p in problems] == [
        ("engine", "runtime", "default"), ("engine", "cgroup_manager", "default"),
        ("engine", "events_logger", "default"), ("containers", "default_ulimits", "default")]
    assert problems[0].describe() == '[engine] runtime is not set (from default); must be "runc"'
    assert "nofile is missing; nproc is missing" in problems[3].describe()


def test_a_later_file_wins_and_the_problem_names_it() -> None:
    later = {"engine": {"runtime": "crun"}}
    problems = setup.find_problems([("a.conf", GOOD), ("/etc/x/99-user.conf", later)], FACTS)
    assert len(problems) == 1
    assert problems[0].describe() == (
        '[engine] runtime is "crun" (from /etc/x/99-user.conf); must be "runc"')
    assert setup.find_problems([("a.conf", later), ("b.conf", GOOD)], FACTS) == []


@pytest.mark.parametrize(("ulimits", "broken"), [
    (["nofile=1024:1048576", "nproc=4096:4096"], "nofile must be soft <= hard <= 20000"),
    (["nofile=2048:1024", "nproc=4096:4096"], "nofile must be soft <= hard"),
    (["nofile=1024:20000"], "nproc is missing"),
    (["nofile=lots", "nproc=1:1"], "nofile is missing"),
    ("nofile=1024:20000", "nofile is missing"),
])
def test_ulimits_above_the_hard_limit_or_missing_are_problems(ulimits: Any, broken: str) -> None:
    doc = {**GOOD, "containers": {"default_ulimits": ulimits}}
    problems = setup.find_problems([("c.conf", doc)], FACTS)
    assert [p.key for p in problems] == ["default_ulimits"]
    assert broken in problems[0].rule


def test_lower_ulimits_than_berths_are_fine() -> None:
    doc = {**GOOD, "containers": {"default_ulimits": ["nproc=10", "nofile=64:20000", "core=0"]}}
    assert setup.find_problems([("c.conf", doc)], FACTS) == []


def test_merging_keeps_every_other_setting() -> None:
    text = """\
# comment
[containers]
env = ["A=1"]
default_ulimits = ["nofile=1:1"]

[engine]
runtime = "crun"
num_locks = 2048

[engine.runtimes]
runc = ["/usr/sbin/runc"]

[network]
network_backend = "netavark"
"""
    merged = tomllib.loads(setup.merge_settings(text, setup.wanted_settings(FACTS)))
    assert merged["containers"] == {"env": ["A=1"], **GOOD["containers"]}
    assert merged["engine"] == {"runtime": "runc", "num_locks": 2048, "cgroup_manager": "cgroupfs",
                                "events_logger": "file", "runtimes": {"runc": ["/usr/sbin/runc"]}}
    assert merged["network"] == {"network_backend": "netavark"}
    assert tomllib.loads(setup.merge_settings("", setup.wanted_settings(FACTS))) == GOOD


def test_merging_into_a_non_table_is_refused() -> None:
    with pytest.raises(ValueError, match="engine is not a table"):
        setup.merge_settings('engine = "x"\n', setup.wanted_settings(FACTS))


def test_the_toml_writer_round_trips_what_containers_conf_holds() -> None:
    doc: dict[str, Any] = {
        "top": 1, "weird key": "quote \" backslash \\ tab \t nl \n del \x7f é",
        "containers": {"init": True, "shm": 0.5, "none": [], "ports": [1, 2]},
        "engine": {"runtime": "runc", "runtimes": {"runc": ["/a", "/b"], "crun": []},
                   "helper": [{"name": "x", "args": ["-v"]}],
                   "volume_plugins": {}},
        "machine": {"cpus": -1, "big": 2**40},
    }
    assert tomllib.loads(setup.dump_toml(doc)) == doc
    special = tomllib.loads(setup.dump_toml({"x": {"inf": math.inf, "ninf": -math.inf}}))
    assert special == {"x": {"inf": math.inf, "ninf": -math.inf}}
    assert math.isnan(tomllib.loads(setup.dump_toml({"n": math.nan}))["n"])


def test_the_toml_writer_refuses_values_toml_config_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"engine\.when: cannot write a object value"):
        setup.dump_toml({"engine": {"when": object()}})


def test_config_files_are_read_in_podmans_order(tmp_path: Path) -> None:
    defaults, system, dropins = tmp_path / "share.conf", tmp_path / "etc.conf", tmp_path / "d"
    dropins.mkdir()
    for path in (defaults, dropins / "90-berth.conf", dropins / "10-a.conf",
                 dropins / "99-z.conf", dropins / "notes.txt"):
        path.write_text("")
    (dropins / "sub.conf").mkdir()
    paths = {"defaults": defaults, "system": system, "dropins": dropins}
    assert setup.config_files({}, **paths) == [
        defaults, dropins / "10-a.conf", dropins / "90-berth.conf", dropins / "99-z.conf"]
    only = tmp_path / "only.conf"
    assert setup.config_files({"CONTAINERS_CONF": str(only)}, **paths) == [only]
    assert setup.config_files({}, tmp_path / "x.conf", **paths) == [tmp_path / "x.conf"]


def test_reading_names_the_broken_or_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("[engine\n")
    with pytest.raises(ValueError, match=r"bad\.conf is not valid TOML"):
        setup.read_layers([bad])
    with pytest.raises(ValueError, match=r"cannot read .*gone\.conf: No such file"):
        setup.read_layers([tmp_path / "gone.conf"])


def test_writing_the_dropin_and_merging_into_a_file(tmp_path: Path) -> None:
    dropin = setup.write_config(FACTS, tmp_path / "d" / "90-berth.conf")
    assert tomllib.loads(dropin.read_text()) == GOOD
    assert dropin.stat().st_mode & 0o777 == 0o644
    own = tmp_path / "own.conf"
    own.write_text('[engine]\nnum_locks = 64\nruntime = "crun"\n')
    setup.write_config(FACTS, own, merge=True)
    assert tomllib.loads(own.read_text())["engine"]["num_locks"] == 64
    assert setup.find_problems(setup.read_layers([own]), FACTS) == []
    assert list(tmp_path.glob("**/.*tmp*")) == []
