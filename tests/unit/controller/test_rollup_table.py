"""The roll-up against DEPLOYMENT_TRANSITIONS: every (status, desired, replicas) it can see.

Exhaustive over every status and desired state, targets 0-2, halted or not, and every
multiset of up to two replicas drawn from each state the roll-up is shown (with ready,
failure kind, unschedulable, restart request and current or old template varied); a
hypothesis property widens it to six replicas."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations_with_replacement, pairwise, product

from hypothesis import given, settings
from hypothesis import strategies as st

from berth.controller.policy import Policy
from berth.controller.rollup import RULES, Rollup, roll_up
from berth.domain.records import Deployment, Replica
from berth.domain.status import DEPLOYMENT_TRANSITIONS, DesiredState, FailureKind
from berth.domain.status import DeploymentStatus as D
from berth.domain.status import ReplicaState as S
from tests.fakes.builders import at, deployment, replica

P = Policy(crash_loop_threshold=3, progress_deadline=60)
BASE = deployment(2)
OLD = replace(BASE, spec=BASE.spec.model_copy(update={"envs": {"V": "1"}}))


def _variants() -> list[Replica]:
    """One replica per distinct fact the roll-up reads (STOPPED rows are never shown it)."""
    shapes: list[dict[str, object]] = [
        {"state": S.PENDING, "ready": False},
        {"state": S.PENDING, "ready": False, "unschedulable": "needs 1 GPU; 0 of 1 free"},
        {"state": S.STARTING, "ready": False},
        {"state": S.RUNNING, "ready": True},
        {"state": S.RUNNING, "ready": False},
        {"state": S.BACKOFF, "ready": False, "failures": 1, "failure": FailureKind.EXITED},
        {"state": S.BACKOFF, "ready": False, "failures": 3, "failure": FailureKind.EXITED},
        {"state": S.BACKOFF, "ready": False, "failures": 1,
         "failure": FailureKind.NOT_EXECUTABLE},
        {"state": S.DRAINING, "ready": False},
        {"state": S.STOPPING, "ready": False},
    ]
    out: list[Replica] = []
    for i, shape in enumerate(shapes):
        state = shape.pop("state")
        assert isinstance(state, S)
        for source in (BASE, OLD):
            rid = f"r{i}{'o' if source is OLD else 'c'}"
            out.append(replica(source, rid, state, **shape))  # type: ignore[arg-type]
    out.append(replica(BASE, "rr", restart_requested_at=at(1)))
    return out


VARIANTS = _variants()


def _seen(status: D, desired: DesiredState) -> bool:
    """The (status, desired) pairs the controller reconciles: DELETED rows are not read, and a
    deletion is final (the service refuses every change once desired is DELETED)."""
    return status != D.DELETED and (status != D.DELETING or desired == DesiredState.DELETED)


def _deployment(status: D, desired: DesiredState, halted: bool) -> Deployment:
    d = replace(BASE, status=status, desired=desired)
    return replace(d, halted_template=d.template, halted_reason="halted") if halted else d


def _check(d: Deployment, rows: list[Replica], result: Rollup) -> None:
    path = [d.status, *(s for s, _ in result.through), result.status]
    for old, new in pairwise(path):
        assert old == new or new in DEPLOYMENT_TRANSITIONS[old], (
            f"{old} -> {new} for {d.desired} with {[(r.state, r.ready) for r in rows]}: "
            f"{result.reason}")
    assert result.status != D.NEW
    if result.status == D.DELETED:
        assert d.desired == DesiredState.DELETED and not rows and result.converged
        assert D.DELETING in path  # the one gate, even when nothing was left to stop
    if d.desired == DesiredState.DELETED:
        assert result.status in (D.DELETING, D.DELETED)
    if d.desired == DesiredState.STOPPED:
        assert result.status == D.DISABLED and result.converged == (not rows)


def test_every_combination_the_rollup_can_see_is_a_legal_transition() -> None:
    checked, fired = 0, set()
    for status, desired, halted, target in product(D, DesiredState, (False, True), (0, 1, 2)):
        if not _seen(status, desired):
            continue
        d = _deployment(status, desired, halted)
        for size in range(3):
            for rows in combinations_with_replacement(VARIANTS, size):
                result = roll_up(d, list(rows), {"local": target}, P)
                _check(d, list(rows), result)
                fired.add(result.rule)
                checked += 1
    assert checked > 30_000
    assert fired == {rule.name for rule in RULES}  # no rule is shadowed by an earlier one


SEEN_PAIRS = [(s, w) for s, w in product(D, DesiredState) if _seen(s, w)]


@settings(max_examples=400, deadline=None)
@given(pair=st.sampled_from(SEEN_PAIRS), halted=st.booleans(),
       target=st.integers(min_value=0, max_value=4),
       rows=st.lists(st.sampled_from(VARIANTS), max_size=6))
def test_any_replica_mix_is_a_legal_transition(
        pair: tuple[D, DesiredState], halted: bool, target: int, rows: list[Replica]) -> None:
    d = _deployment(*pair, halted)
    rows = [replace(r, id=f"{r.id}-{i}") for i, r in enumerate(rows)]
    _check(d, rows, roll_up(d, rows, {"local": target}, P))


def test_delete_with_nothing_left_passes_deleting_in_the_same_tick() -> None:
    for status in set(D) - {D.DELETING, D.DELETED}:
        gone = roll_up(_deployment(status, DesiredState.DELETED, False), [], {}, P)
        assert gone.status == D.DELETED and [s for s, _ in gone.through] == [D.DELETING]
    finishing = roll_up(_deployment(D.DELETING, DesiredState.DELETED, False), [], {}, P)
    assert finishing.status == D.DELETED and finishing.through == ()
