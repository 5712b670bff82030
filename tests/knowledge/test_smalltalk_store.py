"""knowledge.smalltalk on each backend: an edit by one process reaches another process's reader within
its refresh interval (the version counter), a reader keeps its last table while the database is away,
and concurrent first edits of two intents both survive."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from knowledge.db import make_sessionmaker
from knowledge.smalltalk import SmallTalkEntry, SmallTalkStore, merged

DEFAULTS = {
    "greeting": SmallTalkEntry("greeting", ("你好", "您好"), "您好！"),
    "thanks": SmallTalkEntry("thanks", ("谢谢",), "不客气。"),
}


def _store(engine: Engine, refresh: float) -> SmallTalkStore:
    return SmallTalkStore(make_sessionmaker(engine), lambda: DEFAULTS, refresh_seconds=refresh)


def test_an_edit_reaches_other_workers_within_the_refresh(engine: Engine) -> None:
    console, worker = _store(engine, 0.2), _store(engine, 0.2)
    assert worker.overrides() == {}
    console.add_phrase("greeting", "嗨喽")
    console.set_reply("thanks", "不用谢！")
    assert "嗨喽" not in merged(DEFAULTS, worker.overrides())["greeting"].phrases  # still cached
    time.sleep(0.25)
    table = merged(DEFAULTS, worker.overrides())
    assert table["greeting"].phrases == ("你好", "您好", "嗨喽") and table["thanks"].reply == "不用谢！"
    console.reset("greeting")
    time.sleep(0.25)
    assert set(worker.overrides()) == {"thanks"}


def test_the_last_table_is_kept_while_the_database_is_away(engine: Engine) -> None:
    store = _store(engine, 0.0)
    store.set_reply("thanks", "不用谢！")
    assert store.overrides()["thanks"].reply == "不用谢！"
    store.sessions = make_sessionmaker(_unreachable())  # the database goes away
    assert store.overrides()["thanks"].reply == "不用谢！"


def test_concurrent_first_edits_both_survive(engine: Engine) -> None:
    a, b = _store(engine, 0.0), _store(engine, 0.0)
    errors: list[BaseException] = []

    def run(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(lambda: a.add_phrase("greeting", "哈喽哈喽"),)),
        threading.Thread(target=run, args=(lambda: b.set_reply("thanks", "别客气"),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    table = merged(DEFAULTS, _store(engine, 0.0).overrides())
    assert "哈喽哈喽" in table["greeting"].phrases and table["thanks"].reply == "别客气"


def _unreachable() -> Engine:
    from sqlalchemy import create_engine

    return create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
