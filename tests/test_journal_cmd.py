"""``cryptobot journal``: a real paper-broker run journaled by ``trade`` (entry, tp1, tp2, then
the stop, with a funding payment between), read back as a trader reads it, plus the hostile
cases: no journal, tables absent, NaN stored, bad flags, an old journal without the newer
columns, ``-o`` to a missing directory."""

import csv
import io
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cryptobot.engine.trade import trade_orders
from cryptobot.engine.trade_record import TradeOrder
from cryptobot.exchange.replay import ReplayClock
from cryptobot.journal.intents import Intent
from cryptobot.journal.query import Filters, select
from cryptobot.journal.roundtrips import trades
from tests.conftest import Cli
from tests.trading import paper_venue, run, setup, sized, table
from tests.venues import HOUR, SYMBOL, T0, hourly, lake_of

CID = "cb-000000000000000000000001"
START = T0 + 30 * HOUR
# flat at 100; the entry fills at 100, tp1 (102) and tp2 (104) fill on the rise, then the
# slide through 98 takes the stop for the rest; funding is charged at 32:00 on what is held
ROWS = [(100.0, 100.3, 99.7, 100.0)] * 30 + [
    (100.0, 102.5, 99.9, 102.2), (102.2, 104.5, 102.0, 104.0), (104.0, 104.1, 97.0, 97.5),
] + [(97.5, 97.8, 97.2, 97.5)] * 10  # fmt: skip


def strict(text: str) -> list:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line]


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data dir after two ``trade`` runs on the paper broker: the bracket placed at
    30:00, then a run at 40:00 that records its fills (the trip is closed by then)."""
    root = tmp_path_factory.mktemp("traded")
    funding = pd.DataFrame({"timestamp": [T0 + 32 * HOUR], "funding_rate": [0.0001]})
    lake = lake_of(root, hourly(ROWS), funding=funding)
    clock = ReplayClock(START)
    order = TradeOrder.from_record(
        sized(entry=100.0, qty=2.0, cid=CID, strategy="breakout", targets=[102.0, 104.0, 106.0],
              target_qty=[0.5, 0.5, 0.5])
    )  # fmt: skip
    paper = setup(root, venue="paper:paper")
    for moment in (START, T0 + 40 * HOUR):
        clock.move_to(moment)
        run(trade_orders(paper_venue(lake, root, clock), [order], setup=paper, dry_run=False))
    return root


@pytest.fixture
def data(traded: Path, tmp_path: Path) -> Path:
    """A copy of the traded data dir a test may change."""
    copy = tmp_path / "data"
    shutil.copytree(traded, copy)
    return copy


def journal(root: Path) -> Cli:
    return Cli({"CRYPTOBOT_DATA_DIR": str(root)})


# ---- the round trip ------------------------------------------------------------------------
def test_the_round_trip_matches_the_fills_and_the_paper_accounts_money(traded: Path):
    (trip,) = trades(traded, Filters()).records
    assert trip["status"] == "closed" and trip["side"] == "long" and trip["qty"] == 2.0
    assert trip["strategy"] == "breakout" and trip["client_order_id"] == CID
    assert trip["exit_legs"] == ["tp1", "tp2", "stop"] and trip["exit_reason"] == "stop"
    assert trip["exit_client_order_id"] == f"{CID}-sl"
    assert trip["entry_price"] == 100.0
    assert trip["exit_price"] == pytest.approx((0.5 * 102 + 0.5 * 104 + 1.0 * 98) / 2)
    assert trip["expected_price"] == 100.0 and trip["slippage_bps"] == 0.0
    fees = table(traded, "SELECT sum(fee) FROM fills")[0][0]
    funding = table(traded, "SELECT sum(amount) FROM funding_payments")[0][0]
    assert trip["fee"] == pytest.approx(fees) and trip["fee_currency"] == "USDT"
    assert funding < 0 and trip["funding"] == pytest.approx(funding)
    assert trip["gross_pnl"] == pytest.approx(0.5 * 2 + 0.5 * 4 - 1.0 * 2)
    # the paper broker's ledger, kept apart from the fills, moved by exactly the trip's pnl
    balances = [r["balance"] for r in select(traded, "account", Filters()).records]
    assert balances[0] == 1000.0
    assert balances[-1] - balances[0] == pytest.approx(trip["pnl"])
    ids = table(traded, f"SELECT exchange_order_id FROM orders WHERE client_order_id = '{CID}'")
    assert trip["exchange_order_id"] == ids[0][0]


def test_journal_trades_on_a_pipe_is_strict_jsonl_with_iso_times(traded: Path):
    done = journal(traded)("journal", "trades")
    (trip,) = strict(done.stdout)
    assert trip["opened_at"] == "2025-01-02T06:00:00Z" and trip["closed_at"].endswith("Z")


def test_trades_csv_keeps_nested_fields_as_json_text(traded: Path, tmp_path: Path):
    out = tmp_path / "trades.csv"
    journal(traded)("journal", "trades", "--format", "csv", "-o", str(out))
    (row,) = list(csv.DictReader(io.StringIO(out.read_text())))
    assert json.loads(row["exit_legs"]) == ["tp1", "tp2", "stop"]
    assert row["opened_at"] == "2025-01-02T06:00:00Z"


def test_parquet_keeps_times_as_int64_ms(traded: Path, tmp_path: Path):
    out = tmp_path / "fills.parquet"
    journal(traded)("journal", "fills", "-o", str(out))
    read = pq.read_table(out)
    assert str(read.schema.field("ts").type) == "int64"
    assert read.column("leg").to_pylist() == ["entry", "tp1", "tp2", "sl"]
    assert set(read.column("strategy").to_pylist()) == {"breakout"}


# ---- filters -------------------------------------------------------------------------------
def test_filters_narrow_every_kind(traded: Path):
    cli = journal(traded)
    since = strict(cli("journal", "fills", "--since", "2025-01-02T07:00Z").stdout)
    assert [r["leg"] for r in since] == ["tp2", "sl"]
    until = strict(cli("journal", "fills", "--until", "2025-01-02T07:00Z").stdout)
    assert [r["leg"] for r in until] == ["entry", "tp1"]
    newest = strict(cli("journal", "orders", "--limit", "2").stdout)
    everything = strict(cli("journal", "orders").stdout)
    assert len(everything) == 5 and newest == everything[-2:]
    assert strict(cli("journal", "orders", "--symbol", "BTC/USDT:USDT").stdout) == []
    assert len(strict(cli("journal", "trades", "--strategy", "breakout").stdout)) == 1
    assert strict(cli("journal", "trades", "--strategy", "ema_cross").stdout) == []
    for venue in ("paper", "paper:paper"):
        assert len(strict(cli("journal", "account", "--venue", venue).stdout)) == 2
    assert strict(cli("journal", "account", "--exchange", "replay").stdout) == []
    # since 7 days back from now: 2025 is long past
    assert strict(cli("journal", "events", "--since", "7d").stdout) == []


def test_orders_show_the_sized_price_and_the_gate_verdicts(traded: Path):
    orders = strict(journal(traded)("journal", "orders", "--format", "jsonl").stdout)
    entry = next(o for o in orders if o["leg"] == "entry")
    assert entry["expected_price"] == 100.0 and entry["strategy"] == "breakout"
    assert isinstance(entry["gates"], dict) and entry["gates"]
    assert all(o["expected_price"] is None for o in orders if o["leg"] != "entry")


# ---- hostile -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["orders", "fills", "trades", "positions", "events",
                                  "setups", "backtests", "account"])  # fmt: skip
def test_no_journal_is_an_empty_output_with_a_note(tmp_path: Path, kind: str):
    done = journal(tmp_path)("journal", kind, "--format", "json")
    assert json.loads(done.stdout) == []
    assert f"note: no {kind}: no journal in" in done.stderr
    assert not (tmp_path / "cryptobot.duckdb").exists()  # a reader never creates it


def test_tables_absent_read_as_none_and_an_empty_csv_keeps_its_header(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "cryptobot.duckdb")) as con:
        con.execute("CREATE TABLE breaker_state (name VARCHAR)")
    cli = journal(tmp_path)
    done = cli("journal", "trades", "--format", "csv")
    assert done.stdout.startswith("opened_at,closed_at,venue,symbol,")
    assert "the journal holds no fills yet" in done.stderr
    assert cli("journal", "orders", "-q").stderr == ""  # -q: no note


@pytest.mark.parametrize("since", ["garbage", "nand", "-7d", "0d", "2025-13-01", "7x"])
def test_a_bad_since_is_one_line_and_exit_2(traded: Path, since: str):
    done = journal(traded)("journal", "orders", "--since", since, ok=False)
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.startswith("error: --since") and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("since", ["9" * 30 + "w", "9" * 20 + "d"])
def test_a_duration_reaching_back_before_1970_lists_everything(traded: Path, since: str):
    cli = journal(traded)
    for kind in ("orders", "trades", "events"):
        every = cli("journal", kind, "--format", "jsonl").stdout
        assert cli("journal", kind, "--since", since, "--format", "jsonl").stdout == every
    exported = cli("journal", "export", "--parquet-dir", str(traded / "x"), "--since", since)
    assert exported.exit_code == 0


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("journal", "positions", "--strategy", "x"), "--strategy does not apply"),
        (("journal", "account", "--symbol", "X/USDT:USDT"), "--symbol does not apply"),
        (("journal", "orders", "--format", "json", "-o", "o.csv"), "disagree"),
        (("journal", "orders", "--limit", "0"), "--limit"),
        (("journal", "orders", "--limit", "9" * 23), "--limit"),  # beyond DuckDB's LIMIT
        (("journal", "export"), "give one of --xlsx"),
        (("journal", "export", "--xlsx"), "--xlsx needs -o"),
        (("journal", "export", "--xlsx", "--parquet-dir", "d", "-o", "j.xlsx"), "give one of"),
    ],
)
def test_wrong_flags_that_parse_are_usage_errors(traded: Path, args: tuple, why: str):
    done = journal(traded)(*args, ok=False)
    assert done.exit_code == 2 and why in done.stderr and done.stdout == ""


def test_output_to_a_missing_directory_is_one_line_and_nothing_is_written(
    traded: Path, tmp_path: Path
):
    for args in (("journal", "orders", "-o", str(tmp_path / "no" / "o.csv")),
                 ("journal", "export", "--xlsx", "-o", str(tmp_path / "no" / "j.xlsx")),
                 ("journal", "export", "--parquet-dir", str(tmp_path / "no" / "dir"))):  # fmt: skip
        done = journal(traded)(*args, ok=False)
        assert done.exit_code in (1, 2) and "does not exist" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_nan_and_infinity_stored_are_null_in_json(data: Path):
    with duckdb.connect(str(data / "cryptobot.duckdb")) as con:
        con.execute("UPDATE fills SET fee = 'NaN'::DOUBLE, price = 'inf'::DOUBLE "
                    "WHERE leg = 'tp1'")  # fmt: skip
        con.execute("UPDATE account_snapshots SET equity = 'NaN'::DOUBLE")
    cli = journal(data)
    fill = next(f for f in strict(cli("journal", "fills").stdout) if f["leg"] == "tp1")
    assert fill["fee"] is None and fill["price"] is None
    snapshots = json.loads(cli("journal", "account", "-f", "json").stdout)
    assert all(r["equity"] is None for r in snapshots)
    (trip,) = strict(cli("journal", "trades").stdout)
    # an unknown price makes the exit average unknown, not a wrong number; the money comes
    # from the fills' costs; a fee the venue did not state counts as none
    assert trip["exit_price"] is None and trip["gross_pnl"] == pytest.approx(1.0)
    fees = table(data, "SELECT sum(fee) FROM fills WHERE leg <> 'tp1'")[0][0]
    assert trip["fee"] == pytest.approx(fees)
    with duckdb.connect(str(data / "cryptobot.duckdb")) as con:
        con.execute("UPDATE fills SET cost = 'NaN'::DOUBLE WHERE leg = 'tp2'")
    (trip,) = strict(cli("journal", "trades").stdout)
    assert trip["gross_pnl"] is None and trip["pnl"] is None and trip["qty"] == 2.0


OLD_ORDERS = """CREATE TABLE orders (
    venue VARCHAR, client_order_id VARCHAR, parent_id VARCHAR, leg VARCHAR, symbol VARCHAR,
    side VARCHAR, type VARCHAR, amount DOUBLE, price DOUBLE, trigger_price DOUBLE,
    reduce_only BOOLEAN, strategy VARCHAR, status VARCHAR, exchange_order_id VARCHAR,
    filled DOUBLE, average DOUBLE, fee DOUBLE, reason VARCHAR, gates VARCHAR,
    created_at BIGINT, updated_at BIGINT, PRIMARY KEY (venue, client_order_id)
)"""


def test_an_old_journal_reads_and_migrates_on_its_next_write(tmp_path: Path):
    """A journal written before ``expected_price``, ``funding_payments`` and
    ``account_snapshots`` existed: read as it is (the new column null), and ``trade``'s next
    write adds what is missing, keeping the old rows."""
    from cryptobot.core.account import OrderRequest
    from cryptobot.journal.trading import TradeJournal

    with duckdb.connect(str(tmp_path / "cryptobot.duckdb")) as con:
        con.execute(OLD_ORDERS)
        con.execute("INSERT INTO orders (venue, client_order_id, parent_id, leg, symbol, side, "
                    "type, amount, strategy, status, created_at, updated_at) VALUES ('paper:main', "
                    "'old-1', 'old-1', 'entry', 'X/USDT:USDT', 'buy', 'market', 1.0, 'momentum', "
                    "'closed', 1, 1)")  # fmt: skip
    (old,) = strict(journal(tmp_path)("journal", "orders").stdout)
    assert old["client_order_id"] == "old-1" and old["expected_price"] is None
    req = OrderRequest(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                       client_order_id="new-1")  # fmt: skip
    old_journal = TradeJournal(tmp_path, "paper:main")
    old_journal.intend(Intent.of(req, venue="paper:main", parent_id="new-1", leg="entry",
                                 strategy="momentum", ts=2, expected_price=99.5))  # fmt: skip
    old_journal.take_in()
    rows = strict(journal(tmp_path)("journal", "orders").stdout)
    assert [(r["client_order_id"], r["expected_price"]) for r in rows] == [
        ("old-1", None), ("new-1", 99.5)]  # fmt: skip
    assert strict(journal(tmp_path)("journal", "account").stdout) == []


# ---- export --------------------------------------------------------------------------------
def test_export_xlsx_has_a_sheet_per_kind_and_reads_back(data: Path, tmp_path: Path):
    from openpyxl import load_workbook

    with duckdb.connect(str(data / "cryptobot.duckdb")) as con:  # a message a venue wrote
        con.execute("INSERT INTO events (ts, venue, level, kind, message, data) VALUES "
                    f"({START}, 'paper:paper', 'INFO', 'x', '=1+2', '{{}}')")  # fmt: skip
    out = tmp_path / "journal.xlsx"
    done = journal(data)("journal", "export", "--xlsx", "-o", str(out))
    assert "fills 4" in done.stderr and "trades 1" in done.stderr
    book = load_workbook(out)
    assert book.sheetnames == ["orders", "fills", "trades", "positions", "events", "setups",
                               "backtests", "account"]  # fmt: skip
    trades_sheet = list(book["trades"].values)
    header, (trip,) = trades_sheet[0], trades_sheet[1:]
    row = dict(zip(header, trip, strict=True))
    assert row["opened_at (UTC)"].isoformat() == "2025-01-02T06:00:00"
    assert row["exit_reason"] == "stop" and json.loads(row["exit_legs"]) == ["tp1", "tp2", "stop"]
    assert row["qty"] == 2.0
    messages = [r[6] for r in list(book["events"].values)[1:]]
    assert "=1+2" in messages  # text, never a formula
    assert book["events"]["G2"].data_type == "s" or all(
        c.data_type == "s" for c in book["events"]["G"][1:])  # fmt: skip
    filtered = tmp_path / "filtered.xlsx"
    journal(data)("journal", "export", "--xlsx", "-o", str(filtered), "--symbol", "Y/USDT:USDT")
    book = load_workbook(filtered)
    assert all(book[name].max_row == 1 for name in ("orders", "fills", "trades", "positions"))
    assert book["account"].max_row == 3  # --symbol does not apply to account snapshots


def test_export_parquet_dir_writes_a_file_per_kind(traded: Path, tmp_path: Path):
    folder = tmp_path / "pq"
    journal(traded)("journal", "export", "--parquet-dir", str(folder))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{k}.parquet" for k in ("orders", "fills", "trades", "positions", "events", "setups",
                                 "backtests", "account"))  # fmt: skip
    assert pq.read_table(folder / "trades.parquet").num_rows == 1
    empty = pq.read_table(folder / "setups.parquet")
    assert empty.num_rows == 0 and "symbol" in empty.column_names


# ---- another process writing ---------------------------------------------------------------
WRITER = """
import sys
from pathlib import Path
from cryptobot.journal.trading import TradeJournal
journal = TradeJournal(Path(sys.argv[1]), "paper:paper")
journal.event(ts=0, level="INFO", kind="tick", message="first")
print("writing", flush=True)
for n in range(1, 1_000_000):  # until the test kills it
    journal.event(ts=n, level="INFO", kind="tick", message=f"tick {n}")
"""


def test_reads_succeed_while_another_process_writes_the_journal(data: Path):
    """A writer in another process commits an event every few ms (each on a short connection,
    as ``trade`` does); ``cryptobot journal`` processes read between its transactions."""
    import os
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[1] / "src"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
                        "CRYPTOBOT_DATA_DIR": str(data)}  # fmt: skip
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(data)], env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "writing"
        seen = []
        for kind in ("events", "trades", "events"):
            command = [sys.executable, "-m", "cryptobot", "journal", kind, "-f", "json"]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            rows = json.loads(done.stdout)
            if kind == "events":
                seen.append(sum(r["kind"] == "tick" for r in rows))
            assert writer.poll() is None  # the writer was still at it
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert seen[0] >= 1 and seen == sorted(seen)  # every read saw committed rows only, growing


def test_a_table_and_parquet_on_a_pipe(traded: Path):
    cli = journal(traded)
    shown = cli("journal", "trades", "--format", "table", "--data-dir", str(traded)).stdout
    assert "journal trades" in shown and "stop" in shown and '["tp1"' in shown
    piped = cli("journal", "fills", "--format", "parquet")
    read = pq.read_table(io.BytesIO(piped.stdout_bytes))
    assert read.num_rows == 4 and str(read.schema.field("ts").type) == "int64"


def test_the_paper_broker_snapshots_the_account_after_a_call_that_moved_money(tmp_path: Path):
    """No ``trade`` run: the broker alone books the entry's fill at the next bar and stores
    the balance with it; a call that moved nothing stores none."""
    lake = lake_of(tmp_path, hourly(ROWS))
    clock = ReplayClock(START)
    broker = paper_venue(lake, tmp_path, clock)
    run(broker.create_order(symbol=SYMBOL, type="market", side="buy", amount=1.0,
                            client_order_id="cb-paper-1"))  # fmt: skip
    run(broker.fetch_positions())
    assert strict(journal(tmp_path)("journal", "account").stdout) == []
    clock.move_to(START + 2 * HOUR)
    run(broker.fetch_positions())
    (snap,) = strict(journal(tmp_path)("journal", "account", "--venue", "paper").stdout)
    assert snap["venue"] == "paper:paper" and snap["margin_used"] > 0
    assert snap["equity"] == pytest.approx(snap["balance"] + snap["unrealized_pnl"])
