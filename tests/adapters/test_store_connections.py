"""How the store talks to a database server: pooled connections are checked only after they
sat idle, and reads run without a transaction of their own while writes keep theirs (ADR 0025)."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from freegin_ai.adapters.store import EventStore, make_engine
from tests.conftest import POSTGRES_SERVER

pytestmark = pytest.mark.postgres


def _terminate(pid: int) -> None:
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)  # the server closes the socket


def test_a_connection_idle_past_the_limit_is_checked_and_replaced(postgres_url: str) -> None:
    engine = make_engine(postgres_url, ping_after_idle=0.0)
    with engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    _terminate(pid)
    with engine.connect() as conn:  # the check fails, the pool lends a new connection
        assert int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()) != pid
    engine.dispose()


def test_a_connection_used_moments_ago_is_lent_without_a_check(postgres_url: str) -> None:
    engine = make_engine(postgres_url, ping_after_idle=3600.0)
    with engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    _terminate(pid)
    # No round trip before lending: the dead connection is only found out by its statement.
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    with engine.connect() as conn:  # the pool dropped it meanwhile
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    engine.dispose()


def test_reads_run_in_autocommit_and_writes_still_roll_back(postgres_url: str) -> None:
    store = EventStore(postgres_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (x integer)")
        for _ in range(2):  # the pool's one connection goes back and forth between the two
            with store.reader.connect() as conn:
                assert conn.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
                assert conn.exec_driver_sql("SELECT count(*) FROM probe").scalar_one() == 0
            with pytest.raises(RuntimeError), store.engine.begin() as conn:
                assert not conn.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
                conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
                raise RuntimeError("roll back")
        with store.reader.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM probe").scalar_one() == 0
    finally:
        store.close()
