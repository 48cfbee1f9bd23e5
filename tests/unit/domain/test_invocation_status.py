"""The invocation status machine and a try's outcome, as tables: every pair of statuses, every
kind of answer at each attempt, the back-off's growth and cap."""

from __future__ import annotations

import itertools

import pytest

from berth.domain.invocations import (
    INVOCATION_TRANSITIONS,
    InvocationStatus,
    Outcome,
    TryError,
    backoff_seconds,
    check_invocation_transition,
    outcome,
)
from berth.domain.status import IllegalTransition

S = InvocationStatus
Q, R, OK, F, X = S.QUEUED, S.RUNNING, S.SUCCEEDED, S.FAILED, S.EXPIRED

# Written out here, not read from the table under test.
LEGAL = {
    (Q, R),  # leased
    (Q, F),  # the deployment was deleted before it ran
    (R, OK),
    (R, F),
    (R, Q),  # a retry, or a lapsed lease
    (OK, X),
    (F, X),
}
PAIRS = list(itertools.product(S, S))


def test_every_status_has_a_row() -> None:
    assert set(INVOCATION_TRANSITIONS) == set(S)


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_each_pair_is_legal_with_its_reason_or_refused(old: S, new: S) -> None:
    if (old, new) in LEGAL:
        reason = check_invocation_transition(old, new)
        assert reason == INVOCATION_TRANSITIONS[old][new] and reason.strip()
    else:
        with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
            check_invocation_transition(old, new)


def test_pending_and_finished_sets() -> None:
    assert S.pending() == {Q, R}
    assert S.finished() == {OK, F}
    assert not S.pending() & S.finished() and X not in S.pending() | S.finished()


# (status_code, error, attempt, max_attempts) -> outcome with base 1 s, cap 60 s
OUTCOMES: list[tuple[int | None, TryError | None, int, int, Outcome]] = [
    # 2xx: done, whatever the attempt
    (200, None, 1, 3, Outcome(OK)),
    (201, None, 3, 3, Outcome(OK)),
    (204, None, 2, 3, Outcome(OK)),
    (299, None, 1, 1, Outcome(OK)),
    (200, TryError.LOST, 1, 3, Outcome(OK)),  # an answer wins over an error
    # 1xx / 3xx: a verdict, not retried
    (100, None, 1, 3, Outcome(F)),
    (199, None, 1, 3, Outcome(F)),
    (300, None, 1, 3, Outcome(F)),
    (301, None, 1, 3, Outcome(F)),
    (304, None, 1, 3, Outcome(F)),
    # 4xx: the request itself is refused, never retried ...
    (400, None, 1, 3, Outcome(F)),
    (401, None, 1, 3, Outcome(F)),
    (404, None, 1, 3, Outcome(F)),
    (413, None, 1, 3, Outcome(F)),
    (422, None, 1, 3, Outcome(F)),
    (499, None, 1, 3, Outcome(F)),
    # ... but 408 and 429 are overload: retried while tries are left
    (408, None, 1, 3, Outcome(Q, 1.0)),
    (429, None, 1, 3, Outcome(Q, 1.0)),
    (429, None, 2, 3, Outcome(Q, 2.0)),
    (408, None, 3, 3, Outcome(F)),
    (429, None, 3, 3, Outcome(F)),
    # 5xx: retried
    (500, None, 1, 3, Outcome(Q, 1.0)),
    (502, None, 2, 3, Outcome(Q, 2.0)),
    (503, None, 2, 5, Outcome(Q, 2.0)),
    (504, None, 4, 5, Outcome(Q, 8.0)),
    (599, None, 1, 3, Outcome(Q, 1.0)),
    (500, None, 3, 3, Outcome(F)),
    (503, None, 1, 1, Outcome(F)),  # one try only
    (600, None, 1, 3, Outcome(F)),  # not a server error
    # no answer: every TryError is retried, then FAILED
    (None, TryError.CONNECT, 1, 3, Outcome(Q, 1.0)),
    (None, TryError.TIMEOUT, 1, 3, Outcome(Q, 1.0)),
    (None, TryError.LOST, 1, 3, Outcome(Q, 1.0)),
    (None, TryError.CONNECT, 2, 3, Outcome(Q, 2.0)),
    (None, TryError.TIMEOUT, 2, 3, Outcome(Q, 2.0)),
    (None, TryError.LOST, 2, 3, Outcome(Q, 2.0)),
    (None, TryError.CONNECT, 3, 3, Outcome(F)),
    (None, TryError.TIMEOUT, 3, 3, Outcome(F)),
    (None, TryError.LOST, 3, 3, Outcome(F)),
    (None, TryError.TIMEOUT, 1, 1, Outcome(F)),
    # a lapsed lease can take a request past its tries: never another one
    (None, TryError.LOST, 4, 3, Outcome(F)),
    (503, None, 5, 3, Outcome(F)),
    # neither an answer nor an error
    (None, None, 1, 3, Outcome(F)),
]


@pytest.mark.parametrize(("code", "error", "attempt", "max_attempts", "want"), OUTCOMES,
                         ids=[f"{c}-{e}-{a}of{m}" for c, e, a, m, _ in OUTCOMES])
def test_outcome(code: int | None, error: TryError | None, attempt: int, max_attempts: int,
                 want: Outcome) -> None:
    assert outcome(code, error, attempt, max_attempts) == want


def test_outcome_passes_base_and_cap_to_the_backoff() -> None:
    assert outcome(503, None, 3, 10, base=2.0, cap=100.0) == Outcome(Q, 8.0)
    assert outcome(None, TryError.TIMEOUT, 6, 10, base=2.0, cap=5.0) == Outcome(Q, 5.0)


# (attempt, base, cap) -> seconds
BACKOFFS = [
    (0, 1.0, 60.0, 1.0),  # before any try: the base
    (1, 1.0, 60.0, 1.0),
    (2, 1.0, 60.0, 2.0),
    (3, 1.0, 60.0, 4.0),
    (4, 1.0, 60.0, 8.0),
    (6, 1.0, 60.0, 32.0),
    (7, 1.0, 60.0, 60.0),  # 64 capped
    (100, 1.0, 60.0, 60.0),  # the largest max_attempts the spec allows
    (1, 0.5, 60.0, 0.5),
    (3, 0.5, 60.0, 2.0),
    (5, 0.5, 10.0, 8.0),
    (6, 0.5, 10.0, 10.0),
    (3, 3.0, 10.0, 10.0),
    (1, 5.0, 2.0, 2.0),  # the cap wins over the base too
]


@pytest.mark.parametrize(("attempt", "base", "cap", "want"), BACKOFFS)
def test_backoff_seconds(attempt: int, base: float, cap: float, want: float) -> None:
    got = backoff_seconds(attempt, base, cap)
    assert got == want and isinstance(got, float)


def test_backoff_grows_monotonically_up_to_the_cap() -> None:
    values = [backoff_seconds(a) for a in range(1, 101)]
    assert values == sorted(values) and values[-1] == 60.0
    assert all(b in (a * 2, 60.0) for a, b in itertools.pairwise(values))
