"""The podman configuration Berth needs, as data: render it, find what is wrong, write it.

Podman (containers-common 0.50, podman 4.3) reads, in order, /usr/share/containers/containers.conf,
/etc/containers/containers.conf and /etc/containers/containers.conf.d/*.conf (alphanumeric
order, a later file's key wins); when `CONTAINERS_CONF` is set, only that file. Berth writes a
drop-in (`90-berth.conf`) holding only its own keys, so whatever else a user has configured
stays as it is; an explicit config file (`--podman-config`) is merged into instead.

containers.conf has no `cgroup_parent` key: the container runtime passes
`--cgroup-parent` (`berth_cgroup_parent`) on each `podman run`.
"""

from __future__ import annotations

import json
import os
import re
import resource
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEM_DEFAULTS = Path("/usr/share/containers/containers.conf")
SYSTEM_CONFIG = Path("/etc/containers/containers.conf")
SYSTEM_DROPINS = Path("/etc/containers/containers.conf.d")
BERTH_DROPIN = SYSTEM_DROPINS / "90-berth.conf"

# The rlimits Berth gives containers, capped at the host's hard limits (podman's own default
# nofile=1048576 fails with EPERM where root lacks CAP_SYS_RESOURCE).
NOFILE_SOFT = 1024
NOFILE_HARD_CAP = 1048576
NPROC = 4096
RLIMIT_NAMES = ("nofile", "nproc")

WANTED_ENGINE = {"runtime": "runc", "cgroup_manager": "cgroupfs", "events_logger": "file"}


@dataclass(frozen=True)
class HostFacts:
    """This process's memory cgroup and hard rlimits (None: unlimited)."""

    memory_cgroup: str
    nofile_hard: int | None
    nproc_hard: int | None


@dataclass(frozen=True)
class ConfigProblem:
    """One setting that is missing or wrong: `[table] key`, what was found, what is wanted."""

    table: str
    key: str
    found: Any
    wanted: Any
    source: str  # the file that set `found`, or "default"
    rule: str

    def describe(self) -> str:
        found = "not set" if self.found is None else json.dumps(self.found)
        return f"[{self.table}] {self.key} is {found} (from {self.source}); {self.rule}"


def memory_cgroup_of(proc_cgroup_text: str) -> str:
    """The memory controller's path in /proc/<pid>/cgroup (v1), else the v2 path, else "/"."""
    unified = "/"
    for line in proc_cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "memory" in controllers.split(","):
            return path or "/"
        if controllers == "":
            unified = path or "/"
    return unified


def read_host_facts(proc_cgroup: Path = Path("/proc/self/cgroup")) -> HostFacts:
    def hard(limit: int) -> int | None:
        value = resource.getrlimit(limit)[1]
        return None if value == resource.RLIM_INFINITY else value

    try:
        cgroup = memory_cgroup_of(proc_cgroup.read_text())
    except OSError:
        cgroup = "/"
    return HostFacts(cgroup, hard(resource.RLIMIT_NOFILE), hard(resource.RLIMIT_NPROC))


def berth_cgroup_parent(facts: HostFacts) -> str:
    """Where Berth's containers go: a child of the server's own memory cgroup."""
    return facts.memory_cgroup.rstrip("/") + "/berth"


def wanted_ulimits(facts: HostFacts) -> list[str]:
    nofile_hard = min(facts.nofile_hard or NOFILE_HARD_CAP, NOFILE_HARD_CAP)
    nproc = min(facts.nproc_hard or NPROC, NPROC)
    return [f"nofile={min(NOFILE_SOFT, nofile_hard)}:{nofile_hard}", f"nproc={nproc}:{nproc}"]


def wanted_settings(facts: HostFacts) -> dict[str, dict[str, Any]]:
    return {"containers": {"default_ulimits": wanted_ulimits(facts)}, "engine": dict(WANTED_ENGINE)}


def render_dropin(facts: HostFacts) -> str:
    header = (
        "# Written by `berth doctor --fix`: the settings Berth's container runtime needs.\n"
        "# Other podman settings belong in /etc/containers/containers.conf or other drop-ins.\n\n"
    )
    return header + dump_toml(wanted_settings(facts))


def config_files(
    env: Mapping[str, str], explicit: Path | None = None, *,
    defaults: Path = SYSTEM_DEFAULTS, system: Path = SYSTEM_CONFIG, dropins: Path = SYSTEM_DROPINS,
) -> list[Path]:
    """The files podman reads, in order: the system's that exist, or the one it was pointed at."""
    only = explicit or (Path(env["CONTAINERS_CONF"]) if env.get("CONTAINERS_CONF") else None)
    if only is not None:
        return [only]
    files = [p for p in (defaults, system) if p.is_file()]
    if dropins.is_dir():
        files += sorted((p for p in dropins.iterdir() if p.suffix == ".conf" and p.is_file()),
                        key=lambda p: p.name)
    return files


Layers = Sequence[tuple[str, Mapping[str, Any]]]


def read_layers(files: Iterable[Path]) -> list[tuple[str, dict[str, Any]]]:
    """Each file parsed; raises ValueError naming the file when one is unreadable or not TOML."""
    layers = []
    for path in files:
        try:
            layers.append((str(path), tomllib.loads(path.read_text())))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    return layers


def effective_value(layers: Layers, table: str, key: str) -> tuple[Any, str]:
    """The value podman ends up with for `[table] key` (the last layer that sets it wins)."""
    value: Any = None
    source = "default"
    for name, doc in layers:
        section = doc.get(table)
        if isinstance(section, dict) and key in section:
            value, source = section[key], name
    return value, source


def _parse_ulimit(entry: object) -> tuple[str, int, int] | None:
    if not isinstance(entry, str):
        return None
    match = re.fullmatch(r"\s*([a-z]+)\s*=\s*(-?\d+)(?::(-?\d+))?\s*", entry)
    if match is None:
        return None
    soft = int(match[2])
    return match[1], soft, int(match[3]) if match[3] is not None else soft


def find_problems(layers: Layers, facts: HostFacts) -> list[ConfigProblem]:
    problems = []
    for key, wanted in WANTED_ENGINE.items():
        found, source = effective_value(layers, "engine", key)
        if found != wanted:
            problems.append(ConfigProblem("engine", key, found, wanted, source,
                                          f"must be {json.dumps(wanted)}"))
    problems += _ulimit_problems(layers, facts)
    return problems


def _ulimit_problems(layers: Layers, facts: HostFacts) -> list[ConfigProblem]:
    wanted = wanted_ulimits(facts)
    found, source = effective_value(layers, "containers", "default_ulimits")
    entries = found if isinstance(found, list) else []
    parsed = {p[0]: p for p in map(_parse_ulimit, entries) if p is not None}
    host_hard = {"nofile": facts.nofile_hard, "nproc": facts.nproc_hard}
    broken = []
    for name in RLIMIT_NAMES:
        limit = parsed.get(name)
        hard = host_hard[name]
        if limit is None:
            broken.append(f"{name} is missing")
        elif not 0 <= limit[1] <= limit[2] or (hard is not None and limit[2] > hard):
            broken.append(f"{name} must be soft <= hard <= {hard if hard is not None else 'inf'}")
    if not broken:
        return []
    rule = "; ".join(broken) + f" (the host's hard limits; suggested {json.dumps(wanted)})"
    return [ConfigProblem("containers", "default_ulimits", found, wanted, source, rule)]


def merge_settings(text: str, settings: Mapping[str, Mapping[str, Any]]) -> str:
    """`text` (a whole containers.conf) with `settings` set in it, every other key kept.

    Comments are not kept: TOML is re-rendered from the parsed document.
    """
    doc = tomllib.loads(text)
    for table, values in settings.items():
        section = doc.setdefault(table, {})
        if not isinstance(section, dict):
            raise ValueError(f"{table} is not a table in the config")
        section.update(values)
    return dump_toml(doc)


def write_config(facts: HostFacts, target: Path | None = None, *, merge: bool = False) -> Path:
    """Write Berth's settings: the whole drop-in, or (`merge`) into an existing config file."""
    target = target or BERTH_DROPIN
    if merge and target.exists():
        content = merge_settings(target.read_text(), wanted_settings(facts))
    else:
        content = render_dropin(facts)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.write_text(content)
    tmp.chmod(0o644)
    os.replace(tmp, target)
    return target


# A TOML writer for what containers.conf holds: tables of strings, numbers, booleans and
# arrays of them. tomllib only reads.
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and value != value:  # NaN
            return "nan"
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v, where)}" for k, v in value.items()) + "}"
    raise ValueError(f"{where}: cannot write a {type(value).__name__} value")


def dump_toml(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> str:
    scalars = [(k, v) for k, v in doc.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in doc.items() if isinstance(v, dict)]
    out = []
    for key, value in scalars:
        out.append(f"{_key(key)} = {_value(value, '.'.join((*prefix, key)))}\n")
    for key, value in tables:
        path = (*prefix, key)
        body = dump_toml(value, path)
        if out:
            out.append("\n")
        out.append(f"[{'.'.join(_key(k) for k in path)}]\n{body}")
    return "".join(out)
