from berth.domain.spec import Probe, TcpSocketAction
from berth.probes.tracker import ProbeKind, ProbeTracker, verdict


def probe(**kw: float) -> Probe:
    return Probe(tcp_socket=TcpSocketAction(), **kw)


def test_initial_delay_and_period() -> None:
    t = ProbeTracker(ProbeKind.READINESS, probe(initial_delay_seconds=2, period_seconds=5), 100.0)
    assert not t.due(101.9) and t.due(102.0)
    t.record(True, "ok", 102.0)
    assert not t.due(106.9) and t.due(107.0)


def test_readiness_needs_success_threshold_and_clears_after_failure_threshold() -> None:
    t = ProbeTracker(ProbeKind.READINESS, probe(success_threshold=2, failure_threshold=2), 0.0)
    t.record(True, "", 1)
    assert not t.passing
    t.record(True, "", 2)
    assert t.passing
    t.record(False, "503", 3)
    assert t.passing  # one failure is not enough
    t.record(False, "503", 4)
    assert not t.passing and not t.failed


def test_liveness_fails_after_threshold_and_success_resets_count() -> None:
    t = ProbeTracker(ProbeKind.LIVENESS, probe(failure_threshold=3), 0.0)
    for i in range(2):
        t.record(False, "refused", i)
    t.record(True, "", 3)
    for i in range(2):
        t.record(False, "refused", 4 + i)
    assert not t.failed
    t.record(False, "refused", 7)
    assert t.failed


def test_verdict_gates_readiness_on_startup() -> None:
    s = ProbeTracker(ProbeKind.STARTUP, probe(failure_threshold=2), 0.0)
    r = ProbeTracker(ProbeKind.READINESS, probe(), 0.0)
    r.passing = True
    assert verdict(s, r, None).ready is False
    s.record(True, "", 1)
    assert verdict(s, r, None).ready is True
    s2 = ProbeTracker(ProbeKind.STARTUP, probe(failure_threshold=2), 0.0)
    s2.record(False, "x", 1)
    s2.record(False, "x", 2)
    v = verdict(s2, r, None)
    assert v.startup_failed and "startup probe failed" in v.message
    assert verdict(None, None, None).ready is True
