"""``cryptobot trade`` as a user runs it (typer's CliRunner) on the replay exchange of a tmp
lake: the pipe from ``size``, bad records (NaN, infinity, a negative or textual quantity) named
by their line, ``--skip-bad``, strict JSON everywhere, ``--status``, ``--close``, the usage
errors, and the live switches (nothing reaches a live venue without all three)."""

import json
from pathlib import Path

import pytest

from cryptobot.core.timeutil import iso
from tests.conftest import Cli
from tests.trading import last_close, sized, table, walk_lake
from tests.venues import HOUR, SYMBOL, T0

NOW = T0 + 48 * HOUR
Y = "Y/USDT:USDT"


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    walk_lake(root, symbols=(SYMBOL, Y))
    return root


@pytest.fixture
def trader(tmp_path: Path, lake_dir: Path) -> Cli:
    """The CLI on the replay exchange of the lake, whose clock stands at NOW; the lake is the
    data dir, so ``size`` reads its markets and ``trade`` journals beside them."""
    config = tmp_path / "replay.yaml"
    config.write_text(
        f"exchange: replay\ndata_dir: {lake_dir}\n"
        f"replay:\n  source_exchange: sim\n  start: '{iso(NOW)}'\n"
    )
    return Cli({"CRYPTOBOT_CONFIG": str(config)})


def strict(text: str) -> list:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line]


def lines(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def good(lake_dir: Path, n: int, symbol: str = SYMBOL, **kw) -> dict:
    from cryptobot.data.lake import Lake

    entry = last_close(Lake(lake_dir), NOW, symbol)
    return sized(entry=entry, symbol=symbol, cid=f"cb-{n:024d}", **kw)


def test_the_pipe_from_size_places_the_bracket_once(trader: Cli, lake_dir: Path):
    """Maker-first (the config's default): a post-only order at the best bid, then at the
    give-up the rest at market (on a replay whose clock stands after its last bar, neither
    fills: the market order is still open, the stop covers it whole); the report in the
    output. Run again: nothing is sent."""
    from cryptobot.data.lake import Lake

    entry = last_close(Lake(lake_dir), NOW)
    sized_out = trader("size", "--symbol", SYMBOL, "--side", "long", "--entry", str(entry),
                       "--stop", str(round(entry * 0.98, 1)), "--risk-usd", "2",
                       "--format", "jsonl").stdout  # fmt: skip
    (order,) = strict(sized_out)
    assert order["status"] == "sized"
    first = trader("trade", "-", "--format", "jsonl", input=sized_out)
    (out,) = strict(first.stdout)
    cid = order["client_order_id"]
    assert out["status"] == "placed" and [leg["leg"] for leg in out["legs"]] == [
        "entry", "e2", "sl", "tp1", "tp2", "tp3"]  # fmt: skip
    assert [(leg["client_order_id"], leg["type"], leg["status"]) for leg in out["legs"][:3]] == [
        (cid, "limit", "canceled"), (f"{cid}-e2", "market", "open"),
        (f"{cid}-sl", "stop_market", "open")]  # fmt: skip
    assert out["legs"][2]["amount"] == order["qty"]
    assert [leg["amount"] for leg in out["legs"][3:]] == order["target_qty"]
    report = out["execution"]
    assert (report["schema"], report["mode"], report["status"]) == (
        "execution/1", "maker_first", "pending")  # fmt: skip
    assert report["filled"] == 0 and report["orders"][0]["post_only"] is True
    again = trader("trade", "-", "--format", "jsonl", input=sized_out)
    (out,) = strict(again.stdout)
    assert out["status"] == "already_placed" and "nothing sent again" in out["reason"]
    sent = table(lake_dir, "SELECT count(*) FROM order_requests WHERE action = 'create' "
                           "AND outcome = 'sent'")  # fmt: skip
    assert sent == [(6,)]


def test_taker_enters_with_one_market_order(trader: Cli, lake_dir: Path, tmp_path: Path):
    source = tmp_path / "order.jsonl"
    source.write_text(lines(good(lake_dir, 1)))
    (out,) = strict(trader("trade", str(source), "--taker", "--format", "jsonl").stdout)
    assert [(leg["leg"], leg["type"]) for leg in out["legs"]][:2] == [
        ("entry", "market"), ("sl", "stop_market")]  # fmt: skip
    assert out["status"] == "placed" and out["execution"] is None
    assert table(lake_dir, "SELECT count(*) FROM executions") == [(0,)]
    table_out = trader("trade", str(source), "--taker", "--format", "table").stdout
    assert "already_placed" in table_out


def test_the_table_shows_the_execution(trader: Cli, lake_dir: Path, tmp_path: Path):
    source = tmp_path / "order.jsonl"
    source.write_text(lines(good(lake_dir, 1)))
    shown = trader("trade", str(source), "--format", "table").stdout
    assert "maker_first pending" in shown and "0/2" in shown  # the cell may wrap


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"qty": float("nan")}, "qty must be a finite number"),
        ({"qty": float("inf")}, "qty must be a finite number"),
        ({"qty": -1.0}, "qty must be positive"),
        ({"qty": "2.0"}, "qty must be a number"),
        ({"stop": None, "entry": "x"}, "entry must be a number"),
        ({"target_qty": [1.0, 1.0, 1.0]}, "target_qty adds up to 3"),
        ({"schema": "signal/1"}, "expected sized_order/1 or sized_order/2"),
        # an escape sequence would drive the terminal of whoever reads the errors or the journal
        ({"client_order_id": "cb-\x1b]0;pwned\x07x"}, "client_order_id holds a control"),
        ({"strategy": "a\x1b[31mred"}, "strategy holds a control character ('\\x1b')"),
        ({"reason": "x\x00"}, "reason holds a control character"),
        # a formula in the journal's CSV, once a spreadsheet opens it
        ({"strategy": '=HYPERLINK("http://evil","x")'}, "strategy must begin with a letter"),
        ({"client_order_id": "-2-3"}, "client_order_id must begin with a letter or a digit"),
        ({"symbol": "@SUM(1+1)"}, "symbol must begin with a letter or a digit"),
    ],
)
def test_a_bad_record_is_named_by_its_line_and_nothing_of_the_batch_is_sent(
    trader: Cli, lake_dir: Path, bad: dict, why: str
):
    records = [good(lake_dir, 1), good(lake_dir, 2, symbol=Y) | bad]
    text = lines(*records).replace("NaN", "NaN").replace("Infinity", "Infinity")
    refused = trader("trade", "-", input=text, ok=False)
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: stdin line 2: ") and why in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "\x1b" not in refused.stderr
    assert not (lake_dir / "cryptobot.duckdb").exists() or table(
        lake_dir, "SELECT count(*) FROM order_requests") == [(0,)]  # fmt: skip
    # --taker: the good record enters at market (the maker-first executor's wait for a fill
    # that cannot come on this replay, ~2 s of CPU a case, is the subject of the tests above)
    kept = trader("trade", "-", "--skip-bad", "--taker", "--format", "jsonl", input=text)
    assert [o["status"] for o in strict(kept.stdout)] == ["placed"]
    assert "skipped stdin line 2" in kept.stderr


def test_an_empty_input_is_an_empty_output(trader: Cli):
    done = trader("trade", "-", "--format", "jsonl", input="")
    assert done.stdout == ""


def test_a_refused_order_is_one_line_and_exit_1_the_others_go_on(trader: Cli, lake_dir: Path):
    too_big = good(lake_dir, 2, symbol=Y, qty=500.0)  # notional far beyond the account
    refused_by_size = good(lake_dir, 3) | {"status": "refused", "reason": "free_margin: ..."}
    done = trader("trade", "-", "--taker", "--format", "jsonl", ok=False,
                  input=lines(good(lake_dir, 1), too_big, refused_by_size))  # fmt: skip
    assert done.exit_code == 1
    assert [o["status"] for o in strict(done.stdout)] == ["placed", "refused", "skipped"]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and Y in errors[0] and "refused: max_risk_per_trade" in errors[0]
    assert "skipped, refused by size" in done.stderr
    (row,) = table(lake_dir, f"SELECT status, reason, gates FROM orders WHERE symbol = '{Y}'")
    assert row[0] == "refused" and row[1].startswith("max_risk_per_trade")
    assert json.loads(row[2])["max_risk_per_trade"].startswith("REJECT")


def test_a_record_understating_its_risk_is_judged_by_its_price_risk(trader: Cli, lake_dir: Path):
    """A record's ``risk_usd`` is its word: one edited down to $0.01 (500 units, 2 % from the
    stop) is judged by quantity x |entry - stop| and refused as the honest one is."""
    forged = good(lake_dir, 4, symbol=Y, qty=500.0)
    real = forged["risk_usd"]
    done = trader("trade", "-", "--taker", "--format", "jsonl", ok=False,
                  input=lines(forged | {"risk_usd": 0.01}))  # fmt: skip
    assert done.exit_code == 1
    (out,) = strict(done.stdout)
    assert out["status"] == "refused" and out["reason"].startswith("max_risk_per_trade")
    assert f"${real:,.2f} >" in out["reason"], (out["reason"], real)


def test_in_recovery_mode_an_order_sized_at_full_size_is_refused(trader: Cli, lake_dir: Path):
    """Sized before a daily trip (x1), traded in the recovery after it (x0.5): refused with the
    breaker's word; the same order sized in recovery (``size_mult`` 0.5) goes out."""
    from cryptobot.journal import breakers as journal
    from cryptobot.risk.breakers import BreakerState, Mode

    state = BreakerState(
        mode=Mode.recovery,
        tripped_by="daily",
        since=NOW - HOUR,
        reason="recovery after a daily stop",
        recovery_until=NOW + 24 * HOUR,
    )
    update = journal.Update(BreakerState().to_record(), state.to_record(), NOW - HOUR, "test", [])
    journal.save_state(lake_dir, update, account="replay:sim")  # fmt: skip
    full = good(lake_dir, 5)
    done = trader("trade", "-", "--taker", "--format", "jsonl", ok=False, input=lines(full))
    (out,) = strict(done.stdout)
    assert out["status"] == "refused" and "sized at x1: size it again" in out["reason"]
    halved = good(lake_dir, 6, qty=1.0, size_mult=0.5)
    done = trader("trade", "-", "--taker", "--format", "jsonl", input=lines(halved))
    assert [o["status"] for o in strict(done.stdout)] == ["placed"]


@pytest.mark.parametrize("taker", [True, False])
def test_an_entry_the_venue_rejects_is_journaled_rejected_not_left_sending(
    trader: Cli, lake_dir: Path, taker: bool, monkeypatch
):
    """The intent written early (while the executor reads the venue) is stamped later than the
    venue's clock; the rejection's row was stamped with the clock, so a reader took the intent
    for a later send of the order and listed a phantom ``sending`` entry. (The record's parse
    refuses a space in a client id too: it is let through here to reach the venue's refusal.)"""
    import re

    monkeypatch.setattr("cryptobot.engine.trade_record._CLIENT_ID", re.compile(".+"))
    bad = good(lake_dir, 7) | {"client_order_id": "cb bad id"}  # the venue refuses the space
    done = trader("trade", "-", *(["--taker"] if taker else []), "--format", "jsonl", ok=False,
                  input=lines(bad))  # fmt: skip
    (out,) = strict(done.stdout)
    assert out["status"] == "rejected", out
    listed = strict(trader("journal", "orders", "--format", "jsonl").stdout)
    entry = [o for o in listed if o["client_order_id"] == "cb bad id"]
    assert [o["status"] for o in entry] == ["rejected"], entry
    assert entry[0]["updated_at"] >= entry[0]["created_at"]


def test_dry_run_status_and_close_print_strict_json(trader: Cli, lake_dir: Path):
    text = lines(good(lake_dir, 1), good(lake_dir, 2, symbol=Y, side="short"))
    dry = strict(trader("trade", "-", "--dry-run", "--format", "jsonl", input=text).stdout)
    assert [r["request"] for r in dry] == ["set_margin_mode", "set_leverage", *["create_order"] * 5,
                                           "set_margin_mode", "set_leverage",
                                           *["create_order"] * 5]  # fmt: skip
    assert not (lake_dir / "cryptobot.duckdb").exists()  # stored nothing
    status = trader("trade", "--status", "--format", "json")
    assert json.loads(status.stdout) == []  # a replay account lives in one process
    closed = trader("trade", "--close", SYMBOL, "--format", "jsonl")
    (out,) = strict(closed.stdout)
    assert out["status"] == "closed" and out["reason"].startswith("nothing to close")
    table_out = trader("trade", "--status", "--format", "table")
    assert "equity 1,000.00 USDT" in table_out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of SOURCE"),
        (("x.jsonl", "--status"), "not SOURCE and --status"),
        (("--status", "--dry-run"), "--status sends nothing already"),
        (("--close", SYMBOL, "--close-all"), "not both"),
        (("--status", "--tp-split", "50,50"), "--tp-split splits the targets"),
        (("--status", "--taker"), "--taker is how sized orders enter"),
        (("-", "--tp-split", "60,60"), "adds up to 120"),
        (("-", "--tp-split", "25,nan"), "must be a finite number"),
    ],
)
def test_usage_errors_exit_2_with_one_line(trader: Cli, args: tuple, message: str):
    done = trader("trade", *args, input="", ok=False)
    assert done.exit_code == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_live_without_every_switch_sends_nothing(tmp_path: Path, lake_dir: Path):
    config = tmp_path / "paper.yaml"
    config.write_text(f"data_dir: {lake_dir}\n")
    cli = Cli({"CRYPTOBOT_CONFIG": str(config), "CRYPTOBOT_API_KEY": "k3y-never-shown",
               "CRYPTOBOT_API_SECRET": "s3cr3t-never-shown"})  # fmt: skip
    text = lines(good(lake_dir, 1) | {"exchange": "binanceusdm"})
    done = cli("trade", "-", "--live", input=text, ok=False)
    assert done.exit_code == 1 and "missing: `mode: live` in the config" in done.stderr
    live_mode = Cli(cli.env | {"CRYPTOBOT__MODE": "live"})
    done = live_mode("trade", "-", input=text, ok=False)
    assert done.exit_code == 1 and "missing: --live on the command line" in done.stderr
    no_keys = Cli({"CRYPTOBOT_CONFIG": str(config), "CRYPTOBOT__MODE": "live"})
    done = no_keys("trade", "-", "--live", input=text, ok=False)
    assert done.exit_code == 1 and "CRYPTOBOT_API_KEY and CRYPTOBOT_API_SECRET" in done.stderr
    everything = done.stderr + done.stdout
    assert "never-shown" not in everything
    assert not (lake_dir / "cryptobot.duckdb").exists()
