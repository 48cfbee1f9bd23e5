from datetime import UTC, datetime
from pathlib import Path

import pytest

from berth.domain.errors import Conflict, NotFound, SpecInvalid
from berth.services.tokens import TokenService
from berth.store.engine import Store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def svc(tmp_path: Path) -> TokenService:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.migrate()
    return TokenService(store)


def test_admin_token_file_is_created_once_and_private(svc: TokenService, tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    assert svc.ensure_admin_token(path, NOW) is True
    assert svc.ensure_admin_token(path, NOW) is False
    assert path.stat().st_mode & 0o777 == 0o600
    admin = svc.authenticate(path.read_text().strip())
    assert admin is not None and admin.access == "admin" and admin.may(True, "any")


def test_scoped_tokens(svc: TokenService) -> None:
    reader, secret = svc.create({"name": "ci-read", "access": "read", "projects": ["a"]}, NOW)
    assert secret.startswith("bt_") and secret not in repr(reader)
    found = svc.authenticate(secret)
    assert found is not None and found.name == "ci-read"
    assert found.may(False, "a") and not found.may(True, "a") and not found.may(False, "b")
    writer, other = svc.create({"name": "deployer"}, NOW)
    assert writer.may(True, "anything") and svc.verify(other)
    assert svc.authenticate("bt_wrong") is None
    assert {t.name for t in svc.list()} >= {"ci-read", "deployer"}
    svc.delete("deployer")
    assert not svc.verify(other)


def test_token_rules(svc: TokenService) -> None:
    svc.create({"name": "one"}, NOW)
    with pytest.raises(Conflict):
        svc.create({"name": "one"}, NOW)
    for bad, field in (({"name": "Bad Name"}, "name"), ({"name": "x", "access": "root"},
                                                         "access"),
                       ({"name": "admin"}, "name"), ({"name": "p", "projects": ["a b"]},
                                                     "projects[0]"),
                       ({"name": "y", "extra": 1}, "extra")):
        with pytest.raises(SpecInvalid) as info:
            svc.create(bad, NOW)
        assert info.value.violations[0].field == field
    with pytest.raises(Conflict):
        svc.delete("admin")
    with pytest.raises(NotFound):
        svc.delete("nobody")
