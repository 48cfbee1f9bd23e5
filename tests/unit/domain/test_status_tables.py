"""Every pair of every state machine: each legal edge accepted, each other one refused."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest

from berth.domain.status import (
    DEPLOYMENT_TRANSITIONS,
    REPLICA_TRANSITIONS,
    TASK_TRANSITIONS,
    DeploymentStatus,
    IllegalTransition,
    ReplicaState,
    TaskState,
    check_deployment_transition,
    check_replica_transition,
    check_task_transition,
)

Check = Callable[[object, object], None]
MACHINES: list[tuple[str, dict[object, frozenset[object]], Check]] = [
    ("deployment", DEPLOYMENT_TRANSITIONS, check_deployment_transition),  # type: ignore[list-item]
    ("replica", REPLICA_TRANSITIONS, check_replica_transition),  # type: ignore[list-item]
    ("task", TASK_TRANSITIONS, check_task_transition),  # type: ignore[list-item]
]
ENUMS: dict[str, list[object]] = {"deployment": list(DeploymentStatus),
                                  "replica": list(ReplicaState), "task": list(TaskState)}
PAIRS = [(name, table, check, old, new) for name, table, check in MACHINES
         for old, new in product(ENUMS[name], repeat=2)]


@pytest.mark.parametrize("name, table, check, old, new", PAIRS,
                         ids=[f"{p[0]}:{p[3]}->{p[4]}" for p in PAIRS])
def test_each_pair(name: str, table: dict[object, frozenset[object]], check: Check,
                   old: object, new: object) -> None:
    if old == new or new in table[old]:
        check(old, new)
    else:
        with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
            check(old, new)


@pytest.mark.parametrize("name, table, _check", MACHINES, ids=[m[0] for m in MACHINES])
def test_every_state_has_a_row_of_known_states(
        name: str, table: dict[object, frozenset[object]], _check: Check) -> None:
    assert set(table) == set(ENUMS[name])
    assert all(targets <= set(ENUMS[name]) for targets in table.values())


def _reachable(start: DeploymentStatus) -> set[DeploymentStatus]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in DEPLOYMENT_TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("status", list(DeploymentStatus))
def test_every_status_can_be_deleted_and_only_through_deleting(
        status: DeploymentStatus) -> None:
    assert DeploymentStatus.DELETED in _reachable(status)
    if status not in (DeploymentStatus.DELETING, DeploymentStatus.DELETED):
        check_deployment_transition(status, DeploymentStatus.DELETING)
        with pytest.raises(IllegalTransition):
            check_deployment_transition(status, DeploymentStatus.DELETED)
    into_deleted = {s for s, targets in DEPLOYMENT_TRANSITIONS.items()
                    if DeploymentStatus.DELETED in targets}
    assert into_deleted == {DeploymentStatus.DELETING}


def test_terminal_states_have_no_way_out() -> None:
    assert all(not DEPLOYMENT_TRANSITIONS[s] for s in DeploymentStatus.terminal())
    assert all(not TASK_TRANSITIONS[s] for s in TaskState.done())
    assert not REPLICA_TRANSITIONS[ReplicaState.STOPPED]
