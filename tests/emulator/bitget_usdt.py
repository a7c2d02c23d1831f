"""Bitget USDT-M futures emulator served on 127.0.0.1 for the real ccxt ``bitget`` client.

The public routes are the few ccxt calls before trading (``load_markets``: the coin list and
the contracts of each product type, of which only USDT-FUTURES is listed here; the server
time); the signed trading routes are :mod:`bitget_trading`'s. The account, its orders and the
matching engine are the venue-neutral ones (:mod:`account`, :mod:`orders`, :mod:`matching`),
run under Bitget's rules: a crossing post-only order is canceled on arrival, a client id is
never reused, TP/SL orders belong to the position.

Prices are the Binance USDⓈ-M candles of ``../shared/data`` (no Bitget candles are public):
the same price path under Bitget's contract rules, fees (maker 0.02 %, taker 0.06 %) and
position tiers. The tiers are Bitget's documented BTCUSDT example (0-50k at 0.4 % and 125x,
50k-200k at 0.5 % and 100x) applied to every symbol, with a catch-all third tier (1 %, 50x)
that is this emulator's, not Bitget's; the tier's rate applies to the whole notional (no
Binance-style deduction) and closing's taker fee counts into the maintenance margin.

Faults are the shared switches (:class:`~tests.emulator.faults.Faults`); a rate-limited
request gets HTTP 429 with Bitget's ``{"code": "429", "msg": "Too Many Requests"}``.
"""

from pathlib import Path
from typing import Any, ClassVar

from tests.emulator.account import Account, Refused, Rejected
from tests.emulator.bitget_trading import AUTH_HEADERS, PRODUCT, TradingApi, check_signed
from tests.emulator.margin import brackets_from
from tests.emulator.matching import Rules
from tests.emulator.serving import DEFAULT_NOW, SHARED, VenueServer

#: Bitget's documented BTCUSDT tier example, then a catch-all (see the module's docstring)
BITGET_TIERS = [(50_000, 0.004, 125), (200_000, 0.005, 100), (1_000_000_000, 0.01, 50)]
MAKER_FEE, TAKER_FEE = 0.0002, 0.0006
RULES = Rules(post_only="cancel", unique_ids="all", protection_follows_position=True)
PRODUCT_TYPES = ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES", "SUSDT-FUTURES",
                 "SCOIN-FUTURES", "SUSDC-FUTURES")  # fmt: skip

# the routes that place, change, cancel or look up orders (for ``Faults.paths``)
TRADING_PATHS = (
    "/api/v2/mix/order/",
    "/api/v2/mix/position/",
    "/api/v2/mix/account/",
)


class BitgetEmulator(VenueServer):
    key_header: ClassVar[str] = "ACCESS-KEY"
    auth_headers: ClassVar[tuple[str, ...]] = AUTH_HEADERS

    def __init__(
        self, data_dir: Path = SHARED, now_ms: int = DEFAULT_NOW, balance: float = 10_000.0
    ) -> None:
        account = Account(
            brackets=brackets_from(BITGET_TIERS, cumulative=False),
            balance=balance,
            maker_fee=MAKER_FEE,
            taker_fee=TAKER_FEE,
            close_fee=TAKER_FEE,
        )
        super().__init__(data_dir, now_ms, account, RULES)
        self.trading = TradingApi(self.engine)

    def min_notional(self, base: str) -> float:
        return 5.0  # minTradeUSDT

    def rate_limited(self) -> dict[str, Any]:
        return {"code": "429", "msg": "Too Many Requests", "requestTime": self.now_ms,
                "data": None}  # fmt: skip

    def unwell(self) -> dict[str, Any]:
        return {"code": "40015", "msg": "System is abnormal, please try again later",
                "requestTime": self.now_ms, "data": None}  # fmt: skip

    def route(
        self, path: str, q: dict[str, Any], method: str, headers: dict[str, str]
    ) -> tuple[int, Any]:
        signed = self.trading.routes(q).get((method, path))
        if signed is not None:
            try:
                check_signed(headers)
            except Rejected as no:
                return self.trading.refusal(no)
            return self.trading.answer(signed)
        public = {
            "/api/v2/public/time": lambda: {"serverTime": str(self.now_ms)},
            "/api/v2/spot/public/coins": self.coins,
            "/api/v2/mix/market/contracts": lambda: self.contracts(q),
            "/api/v2/mix/market/merge-depth": lambda: self.trading.depth(q),
        }.get(path)
        if public is None or method != "GET":
            body = {"code": "40404", "msg": f"Request URL NOT FOUND {method} {path}"}
            return 404, body | {"requestTime": self.now_ms, "data": None}
        return self.trading.answer(public)

    # ---- public routes ---------------------------------------------------------------------
    def coins(self) -> list[dict[str, Any]]:
        """``/api/v2/spot/public/coins``: ccxt loads it with the markets; no chains."""
        return [
            {"coinId": str(i), "coin": coin, "transfer": "true", "chains": [], "areaCoin": "no"}
            for i, coin in enumerate(["USDT", *self.symbols], start=1)
        ]

    def contracts(self, q: dict[str, Any]) -> list[dict[str, Any]]:
        """``/api/v2/mix/market/contracts``: the perpetuals of USDT-FUTURES (the other product
        types are empty)."""
        product = str(q.get("productType") or "").upper()
        if product not in PRODUCT_TYPES:
            raise Rejected("40020", "Parameter productType error")
        if product != PRODUCT:
            return []
        rows = [self.contract(base) for base in self.symbols]
        if q.get("symbol"):
            rows = [r for r in rows if r["symbol"] == str(q["symbol"]).upper()]
            if not rows:
                raise Refused("unknown_symbol", symbol=q["symbol"])
        return rows

    def contract(self, base: str) -> dict[str, Any]:
        tick, step = self.tick_step(base)
        price_place = _decimals(tick)
        return {
            "symbol": f"{base}USDT",
            "baseCoin": base,
            "quoteCoin": "USDT",
            "buyLimitPriceRatio": "0.05",
            "sellLimitPriceRatio": "0.05",
            "feeRateUpRatio": "0.005",
            "makerFeeRate": str(MAKER_FEE),
            "takerFeeRate": str(TAKER_FEE),
            "openCostUpRatio": "0.01",
            "supportMarginCoins": ["USDT"],
            "minTradeNum": step,
            "priceEndStep": str(round(float(tick) * 10**price_place)),
            "volumePlace": str(_decimals(step)),
            "pricePlace": str(price_place),
            "sizeMultiplier": step,
            "symbolType": "perpetual",
            "minTradeUSDT": "5",
            "maxSymbolOrderNum": "200",
            "maxProductOrderNum": "400",
            "maxPositionNum": "150",
            "symbolStatus": "normal",
            "offTime": "-1",
            "limitOpenTime": "-1",
            "deliveryTime": "",
            "deliveryStartTime": "",
            "deliveryPeriod": "",
            "launchTime": "",
            "fundInterval": "8",
            "minLever": "1",
            "maxLever": str(self.account.brackets[0].max_leverage),
            "posLimit": "0.05",
            "maintainTime": "",
        }


def _decimals(number: str) -> int:
    """Decimal places of a tick or step as printed ("0.0100" -> 2, "1" -> 0)."""
    digits = number.split(".")[1].rstrip("0") if "." in number else ""
    return len(digits)
