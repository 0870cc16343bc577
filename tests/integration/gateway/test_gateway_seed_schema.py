"""Seed users, the activity-log partitions and retention purges."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from tests.conftest import make_migrated_database, worker_suffix
from tests.integration.gateway.conftest import make_settings

from common.db import Database
from common.ids import demo_user_id
from common.testing import drop_database
from gateway import repository
from gateway.main import maintain
from gateway.models import app_user, idempotency_key, refresh_token
from gateway.passwords import verify_password_sync
from gateway.seed import ADMIN_EMAIL, DEMO_PASSWORD, DEMO_USERS, seed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def seed_db(pg_admin_url: str) -> AsyncIterator[Database]:
    name = f"sigmasight_gwseed_{worker_suffix()}"
    url = await make_migrated_database(pg_admin_url, name, services=("gateway",))
    db = Database(url, pool_size=2)
    yield db
    await db.close()
    await drop_database(pg_admin_url, name)


async def users(db: Database) -> dict[str, dict]:
    async with db.session() as session:
        rows = (await session.execute(sa.select(app_user))).mappings().all()
    return {str(r["email"]): dict(r) for r in rows}


async def test_seed_is_idempotent_and_uses_stable_ids(seed_db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(seed_db.url, tmp_path, demo_admin_password="first-admin-pass")
    assert await seed(seed_db, settings) is None  # the password came from DEMO_ADMIN_PASSWORD
    first = await users(seed_db)
    await seed(seed_db, settings)
    second = await users(seed_db)
    assert set(second) == {u.email for u in DEMO_USERS} | {ADMIN_EMAIL}
    for email, row in second.items():
        assert row["id"] == demo_user_id(email)
        assert row["password_hash"] == first[email]["password_hash"]  # no rehash when unchanged
    hedge = second["demo_hedgefundstyle@sigmasight.com"]
    assert (hedge["full_name"], hedge["username"], hedge["role"], hedge["is_demo"]) == (
        "Demo Hedge Fund Style Investor",
        "demo_hedgefundstyle",
        "user",
        True,
    )
    assert verify_password_sync(DEMO_PASSWORD, hedge["password_hash"])
    admin = second[ADMIN_EMAIL]
    assert (admin["role"], admin["is_demo"]) == ("admin", False)
    assert verify_password_sync("first-admin-pass", admin["password_hash"])


async def test_changed_admin_password_replaces_the_hash(seed_db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await seed(seed_db, make_settings(seed_db.url, tmp_path, demo_admin_password="first-admin-pass"))
    await seed(seed_db, make_settings(seed_db.url, tmp_path, demo_admin_password="second-admin-pass"))
    admin = (await users(seed_db))[ADMIN_EMAIL]
    assert verify_password_sync("second-admin-pass", admin["password_hash"])
    assert not verify_password_sync("first-admin-pass", admin["password_hash"])


async def test_all_in_one_without_admin_password_generates_a_private_file(seed_db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(seed_db.url, tmp_path / "data", demo_admin_password=None)
    path = await seed(seed_db, settings)
    assert path == tmp_path / "data" / "admin_password"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 24
    assert verify_password_sync(password, (await users(seed_db))[ADMIN_EMAIL]["password_hash"])
    assert await seed(seed_db, settings) == path
    assert path.read_text().strip() == password  # never overwritten


async def test_distributed_mode_without_admin_password_refuses(seed_db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(seed_db.url, tmp_path, demo_admin_password=None, mode="distributed")
    with pytest.raises(SystemExit, match="DEMO_ADMIN_PASSWORD"):
        await seed(seed_db, settings)
    assert not (tmp_path / "admin_password").exists()


async def test_api_user_view_exposes_the_contract_columns(seed_db: Database) -> None:
    async with seed_db.session() as session:
        row = (
            (await session.execute(sa.text("SELECT * FROM gateway.api_user WHERE email = :e"), {"e": ADMIN_EMAIL}))
            .mappings()
            .one()
        )
    assert set(row.keys()) == {"id", "email", "full_name", "is_demo"}
    assert row["id"] == demo_user_id(ADMIN_EMAIL)


async def test_emails_are_unique_case_insensitively(seed_db: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        async with seed_db.transaction() as session:
            await session.execute(
                sa.insert(app_user).values(
                    id=uuid.uuid4(), email="DEMO_HNW@SIGMASIGHT.COM", password_hash="x", full_name="Dup"
                )
            )


async def test_partitions_cover_this_and_next_month_and_old_ones_are_dropped(gateway_db: Database) -> None:
    async with gateway_db.transaction() as session:
        await session.execute(
            sa.text(
                "CREATE TABLE gateway.activity_log_2019_01 PARTITION OF gateway.activity_log "
                "FOR VALUES FROM ('2019-01-01 00:00+00') TO ('2019-02-01 00:00+00')"
            )
        )
    async with gateway_db.transaction() as session:
        changes = await repository.ensure_activity_partitions(session)
        names = (
            await session.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'gateway.activity_log'::regclass"
                )
            )
        ).scalars()
        names = set(names)
    assert ("dropped", "activity_log_2019_01") in changes
    now = datetime.now(UTC)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert f"activity_log_{now:%Y_%m}" in names
    assert f"activity_log_{next_month:%Y_%m}" in names
    assert "activity_log_2019_01" not in names


async def test_maintenance_purges_expired_keys_and_old_refresh_tokens(gateway_db: Database, seeded) -> None:  # type: ignore[no-untyped-def]
    user_id = demo_user_id("demo_individual@sigmasight.com")
    async with gateway_db.transaction() as session:
        await session.execute(
            sa.insert(idempotency_key).values(
                user_id=user_id,
                key="old-key",
                method="POST",
                route="/api/v1/tags",
                request_hash=b"\x00" * 32,
                state="done",
                expires_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        await session.execute(
            sa.insert(refresh_token).values(
                user_id=user_id,
                family_id=uuid.uuid4(),
                token_hash=os.urandom(32),
                expires_at=datetime.now(UTC) - timedelta(days=8),
            )
        )
    await maintain(gateway_db)
    async with gateway_db.session() as session:
        keys = await session.scalar(sa.select(sa.func.count()).where(idempotency_key.c.key == "old-key"))
        stale = await session.scalar(
            sa.select(sa.func.count()).where(refresh_token.c.expires_at < sa.func.now() - sa.text("interval '7 days'"))
        )
    assert keys == 0
    assert stale == 0
