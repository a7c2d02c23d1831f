"""The configuration schema: every tunable of the five plans, with its allowed range.

The YAML in ``default.yaml`` and these models must agree key for key (``extra="forbid"``), so a
misspelt key in a user file is reported instead of silently ignored.
"""

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
    model_validator,
)

from cryptobot.core.numbers import MAX_SLIPPAGE_BPS
from cryptobot.core.setup import MAX_CONFIDENCE
from cryptobot.core.venues import PAPER_ACCOUNT, VENUES


def _not_a_bool(value: object) -> object:
    """YAML reads true/false/yes/no/on/off as booleans and pydantic would take them as 1 and 0:
    ``daily_loss_pct: false`` became a 0 % limit that trips at "down 0.00%", ``yes`` a 1 %
    one. A number setting takes numbers only."""
    if isinstance(value, bool):
        raise ValueError("a number (true/false/yes/no are not numbers)")
    return value


#: Every number in the settings is one of these two (a bool is refused, see ``_not_a_bool``).
Float = Annotated[float, BeforeValidator(_not_a_bool)]
Int = Annotated[int, BeforeValidator(_not_a_bool)]
Pct = Annotated[Float, Field(ge=0, le=100)]
Positive = Annotated[Float, Field(gt=0)]
NonNeg = Annotated[Float, Field(ge=0)]
Count = Annotated[Int, Field(ge=1)]
Timeframe = Literal[
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w"
]


Venue = Literal["binanceusdm", "bybit", "bitget", "replay"]
assert get_args(Venue) == VENUES  # one list of names (the CLI checks --exchange against it)


class Section(BaseModel):
    """Unknown keys are errors, and so are NaN and infinity: a NaN limit compares false with
    everything, so ``daily_loss_pct: .nan`` would silently disable the breaker it configures.

    Validators are built on first use (``defer_build``), not as each of the 30-odd sections is
    defined: most sections are only ever validated inside ``Settings``, whose validator holds
    them all, so building each one on its own too cost every command 0.02-0.03 s at start."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)


class ExchangeSettings(Section):
    api_base: str | None = None
    ws_base: str | None = None
    sandbox: bool = False
    enable_rate_limit: bool = True
    timeout_ms: Annotated[Int, Field(ge=100, le=120_000)] = 10_000
    ohlcv_limit: Annotated[Int, Field(ge=1, le=5000)] = 1000
    funding_limit: Annotated[Int, Field(ge=1, le=5000)] = 100
    open_interest_limit: Annotated[Int, Field(ge=1, le=5000)] = 100
    open_interest_max_days: Count = 30


class RetrySettings(Section):
    attempts: Annotated[Int, Field(ge=1, le=20)]
    base_delay_s: NonNeg
    max_delay_s: NonNeg


class ReplaySettings(Section):
    source_dir: str | None
    source_exchange: str
    start: str | None


class UniverseSettings(Section):
    quote: str
    exclude_bases: list[str]
    min_quote_volume_24h: NonNeg


class FetchSettings(Section):
    timeframes: list[Timeframe]
    days: Annotated[Float, Field(gt=0, le=3650)]
    concurrency: Annotated[Int, Field(ge=1, le=32)]
    funding: bool
    open_interest: bool
    open_interest_period: Literal["5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"]
    fear_greed_url: str


class BosFvgFibSettings(Section):
    context_timeframe: Timeframe
    entry_timeframe: Timeframe
    htf_timeframe: Timeframe | None
    allow_choch: bool
    swing_left: Count
    swing_right: Count
    swing_min_atr: NonNeg
    bos_confirm_closes: Count
    atr_period: Count
    fib_levels: list[Annotated[Float, Field(gt=0, lt=1)]]
    targets_r: list[Positive]
    min_confidence: Annotated[Int, Field(ge=0, le=MAX_CONFIDENCE)]
    poi_max_age_bars: Count
    fvg_min_size_pct: Positive
    clear_break_atr: NonNeg
    clear_break_closes: Count
    retest_atr: NonNeg
    entry_swing_left: Count
    entry_swing_right: Count
    entry_fvg_min_atr: Positive
    entry_tolerance_atr: NonNeg
    stop_buffer_atr: NonNeg
    min_stop_atr: Positive


class MomentumSettings(Section):
    timeframe: Timeframe
    confirm_timeframe: Timeframe
    ema_fast: Count
    ema_slow: Count
    rsi_period: Count
    rsi_long_min: Pct
    rsi_short_max: Pct
    volume_period: Count
    volume_mult: Positive
    adx_period: Count
    adx_min: Pct
    atr_period: Count
    stop_atr_mult: Positive
    cross_within_bars: Count
    targets_r: list[Positive]


#: an EMA period TA-Lib takes (2..100000) and a window a lake can hold
EmaPeriod = Annotated[Int, Field(ge=2, le=10_000)]


class EmaCrossSettings(Section):
    """The reference EMA cross (``strategies/ema_cross.py``); ``stop_atr`` None: no stop."""

    timeframe: Timeframe
    fast: EmaPeriod
    slow: EmaPeriod
    stop_atr: Annotated[Float, Field(gt=0, le=100)] | None
    targets_r: list[Positive]

    @model_validator(mode="after")
    def _ordered(self) -> "EmaCrossSettings":
        """Targets out of order are a ladder no position could follow. (``fast`` at or above
        ``slow`` is left alone: a sweep grid spans both orders, and the cross is then the
        mirror one.)"""
        if any(b <= a for a, b in zip(self.targets_r, self.targets_r[1:], strict=False)):
            raise ValueError(f"targets_r must rise strictly: {self.targets_r}")
        return self


class BreakoutSettings(Section):
    timeframe: Timeframe
    confirm_timeframe: Timeframe
    context_timeframe: Timeframe
    volume_period: Count
    volume_mult: Positive
    orderflow_mult: Positive
    sr_lookback: Count
    rs_period: Count
    rs_percentile_min: Pct
    pullback_max_pct: Pct
    pullback_bars: Count
    daily_ema: Count
    targets_r: list[Positive]


class GridSettings(Section):
    levels: Annotated[Int, Field(ge=2, le=500)]
    range_pct: Positive
    order_usd: Positive


class FundingCarrySettings(Section):
    min_rate: Positive
    min_periods: Count


class CrowdSettings(Section):
    """The 2-of-4 trigger's thresholds (``strategies.cot_crowd``; ``strategies/cot_crowd.py``)."""

    required_extremes: Annotated[Int, Field(ge=1, le=4)]
    liquidation_spike_mult: Positive
    fear_greed_low: Pct
    fear_greed_high: Pct
    funding_extreme: Positive
    long_short_skew: Positive


class CotCrowdSettings(CrowdSettings):
    """``strategies.cot_crowd``: the thresholds, and how the readings are gathered per bar."""

    timeframe: Timeframe
    assets: dict[str, str]  # symbol base -> COT asset (a key of cot.markets)
    atr_period: Count
    stop_atr_mult: Positive
    targets_r: list[Positive]
    cooldown_bars: Count
    crowd_period: Timeframe
    liquidation_window: Annotated[Int, Field(ge=2)]
    max_reading_age_hours: Positive


class StrategiesSettings(Section):
    enabled: list[
        Literal[
            "bos_fvg_fib",
            "momentum",
            "breakout",
            "cot_crowd",
            "ema_cross",
            "grid",
            "funding_carry",
        ]
    ]
    bos_fvg_fib: BosFvgFibSettings
    momentum: MomentumSettings
    ema_cross: EmaCrossSettings
    breakout: BreakoutSettings
    grid: GridSettings
    funding_carry: FundingCarrySettings
    cot_crowd: CotCrowdSettings


class ScanSettings(Section):
    top: Count
    bars: Annotated[Int, Field(ge=50, le=20_000)]
    within: Count
    benchmark: str


class SignalSettings(Section):
    regime_filter: bool
    regime_block: dict[str, list[Literal["ranging", "trending", "volatile"]]]
    htf_bias: bool
    htf: dict[str, Timeframe]
    htf_ema: Count
    funding_extreme: Positive
    cooldown_after_loss_min: NonNeg
    max_setup_age_bars: Count
    one_signal_per_symbol: bool


class CotSettings(Section):
    report: Literal["tff_futures_only", "tff_futures_and_options_combined", "legacy_futures_only"]
    markets: list[str]
    lookback_weeks: Count
    extreme_percentile: Pct


CotReport = Literal["tff_futures_only", "tff_combined", "legacy_futures_only", "legacy_combined"]


class CotBiasSettings(Section):
    """``cot:``: where the CFTC data comes from and how a weekly bias is read from it."""

    api_base: str
    files_base: str
    reports: list[CotReport]
    first_year: Annotated[Int, Field(ge=2006, le=2100)]
    page_size: Annotated[Int, Field(ge=1, le=50_000)]
    timeout_s: Positive
    markets: dict[str, Annotated[str, Field(pattern=r"^[0-9A-Z]{6}$")]]
    assets: list[str]
    bias_report: CotReport
    category: Literal[
        "asset_mgr", "lev_money", "dealer", "other_rept", "nonrept", "noncomm", "comm"
    ]
    measure: Literal["net", "net_pct_oi"]
    method: Literal["percentile", "minmax"]
    windows: list[Annotated[Int, Field(ge=2, le=1000)]]
    bias_window: Annotated[Int, Field(ge=2, le=1000)]
    bullish_at: Pct
    bearish_at: Pct
    signal_filter: bool
    max_report_age_days: Annotated[Int, Field(ge=1, le=3650)]
    closures: list[str]
    publication_overrides: dict[str, str]


class ContextSettings(Section):
    cot: CotSettings


#: A leverage setting (the exchanges' range)
Leverage = Annotated[Float, Field(ge=1, le=200)]
#: A symbol's base as the markets spell it (BTC, 1000PEPE): a lower-case key would never match
AssetKey = Annotated[str, Field(pattern=r"^[0-9A-Z]{1,20}$")]


class SizingSettings(Section):
    method: Literal["fixed_usd", "pct_equity", "margin_pct"]
    risk_usd: Positive
    risk_pct: Annotated[Float, Field(gt=0, le=100)]
    margin_pct: Annotated[Float, Field(gt=0, le=100)]
    leverage: Leverage
    leverage_by_asset: dict[AssetKey, Leverage]  # symbol base -> leverage, instead of `leverage`
    include_fees: bool
    min_size_tolerance_pct: Pct


class LadderStep(Section):
    gain_pct: NonNeg
    risk_pct: Annotated[Float, Field(gt=0, le=100)]
    max_leverage: Annotated[Float, Field(ge=1, le=200)]


class LeverageLadderSettings(Section):
    enabled: bool
    steps: list[LadderStep]


class DynamicLeverageSettings(Section):
    enabled: bool
    high_confidence_bonus: Annotated[Int, Field(ge=0, le=10)]
    high_confidence_min: Annotated[Int, Field(ge=0, le=MAX_CONFIDENCE)]
    low_volatility_max_pct: Positive
    low_volatility_bonus: Annotated[Int, Field(ge=0, le=10)]
    after_loss_penalty: Annotated[Int, Field(ge=0, le=10)]
    drawdown_cap_pct: Pct


class GateSettings(Section):
    max_risk_per_trade_pct: Pct
    max_order_notional_usd: Positive
    max_total_exposure_pct: Annotated[Float, Field(ge=0, le=10_000)]
    max_symbol_exposure_pct: Annotated[Float, Field(ge=0, le=10_000)]
    max_correlated_exposure_pct: Annotated[Float, Field(ge=0, le=10_000)]
    correlation_threshold: Annotated[Float, Field(ge=0, le=1)]
    correlation_lookback_days: Count
    max_concurrent_positions: Count
    one_position_per_symbol: bool
    reserve_cash_pct: Pct
    max_price_deviation_pct: Pct


#: a block or recovery longer than a year is a typo (1e300 hours would overflow every clock)
_YEAR_HOURS = 366 * 24
#: a loss limit of 0 % would trip on a flat account ("down 0.00%"): a limit is above zero
LossLimitPct = Annotated[Float, Field(gt=0, le=100)]


class BreakerSettings(Section):
    daily_loss_pct: LossLimitPct
    weekly_loss_pct: LossLimitPct
    monthly_loss_pct: LossLimitPct
    daily_loss_usd: Positive | None
    weekly_loss_usd: Positive | None
    daily_block_hours: Annotated[Float, Field(gt=0, le=_YEAR_HOURS)]
    recovery_hours: Annotated[Float, Field(ge=0, le=_YEAR_HOURS)]
    recovery_size_mult: Annotated[Float, Field(gt=0, le=1)]
    flash_crash_pct: LossLimitPct
    flash_crash_window_s: Positive
    flash_crash_block_min: NonNeg
    min_margin_ratio_pct: Pct


class TakeProfitStep(Section):
    r: Positive
    pct: Pct


def _at_most_the_position(steps: list[TakeProfitStep]) -> list[TakeProfitStep]:
    """A ladder selling more than the position is a typo (25/25/25/50), not a plan."""
    if sum(s.pct for s in steps) > 100.0 + 1e-9:
        raise ValueError("slices adding up to at most 100 % of the position")
    return steps


Ladder = Annotated[list[TakeProfitStep], AfterValidator(_at_most_the_position)]


class TrailTier(Section):
    at_r: NonNeg
    atr_mult: Positive


class ScaleInSettings(Section):
    enabled: bool
    trigger_margin_profit_pct: Positive
    add_size_mult: Positive
    close_original_frac: Annotated[Float, Field(ge=0, le=1)]
    stop_to_breakeven: bool
    max_adds: Annotated[Int, Field(ge=0, le=50)]


#: Exits a strategy's own bars raise, taken at the next open (``manage.exit_on``). Every strategy
#: can exit on a regime change; the momentum plan's exits read its EMAs and RSI, so only a
#: momentum profile may list them.
ExitRule = Literal["regime_change", "ema_cross", "rsi_divergence"]
AnyStrategyExit = Literal["regime_change"]


class ManageRules(Section):
    """How one strategy's trades are managed (``manage/policy.py`` says what each rule does)."""

    take_profit_ladder: Ladder
    breakeven_after_r: NonNeg
    trail_rest: bool
    trailing_atr_tiers: list[TrailTier]
    trail_weak_atr_mult: Positive | None  # the trail's multiple while the trend weakens
    strong_trend_adx: Pct  # ADX(14) at or above it, and rising: a strong trend
    time_stop_minutes: NonNeg | None  # None: TIME_STOP_BARS bars of the strategy's timeframe
    time_stop_until_r: Positive  # the time stop spares a trade once it reached this R
    exit_on: list[ExitRule]
    divergence_swing_bars: Count  # fractal width of the swings an RSI divergence is read on
    scale_in: ScaleInSettings
    # the R of a position without a stop, as % of its entry (None: the liquidation distance)
    manual_risk_pct: Annotated[Float, Field(gt=0, le=100)] | None


class _Partial(Section):
    """A profile: only the keys it sets count (and are shown), the rest come from the base."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any] | None:
        data = handler(self)
        if not isinstance(self, _Partial):  # a nested section the profile left unset
            return data
        return {k: v for k, v in data.items() if k in self.model_fields_set}


def _partial(model: type[BaseModel], name: str, **retyped: Any) -> type[BaseModel]:
    """``model`` with every key optional (nested sections too), each validated as in ``model``
    (or as ``retyped``) when given: a profile is checked key by key, with its own path in the
    error, and merged over the base by ``ManageSettings.for_strategy``."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        kind = retyped.get(key, info.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            kind = _partial(kind, f"{name}{kind.__name__}")
        elif info.metadata:
            kind = Annotated[kind, *info.metadata]
        fields[key] = (kind, None)  # None: not set (defaults are not validated)
    return create_model(name, __base__=_Partial, **fields)


ManageProfile = _partial(ManageRules, "ManageProfile", exit_on=list[AnyStrategyExit])
MomentumProfile = _partial(ManageRules, "MomentumProfile")


class ManageProfiles(_Partial):
    """Per-strategy overrides of ``manage:`` (a key for a strategy that does not exist is an
    error, like any unknown key)."""

    bos_fvg_fib: ManageProfile | None = None  # type: ignore[valid-type]
    momentum: MomentumProfile | None = None  # type: ignore[valid-type]
    breakout: ManageProfile | None = None  # type: ignore[valid-type]
    cot_crowd: ManageProfile | None = None  # type: ignore[valid-type]
    ema_cross: ManageProfile | None = None  # type: ignore[valid-type]


class ManageSettings(ManageRules):
    """``manage:``: the base rules, every strategy's ``profiles`` over them, and the interval of
    ``manage --watch``."""

    exit_on: list[AnyStrategyExit]  # type: ignore[assignment]  # momentum's: in its profile
    watch_interval_s: Positive
    profiles: ManageProfiles

    def for_strategy(self, strategy: str) -> ManageRules:
        """The rules ``strategy``'s trades follow: its profile merged over the base, section by
        section (a list, such as the ladder, is replaced whole). The one place that picks them:
        backtest, and later ``manage`` and ``daemon``, all ask here."""
        rules = self.model_dump(include=set(ManageRules.model_fields))
        profile = getattr(self.profiles, strategy, None)
        if profile is not None:
            _merged(rules, profile.model_dump())
        return ManageRules.model_validate(rules)

    def overriding(self, **values: Any) -> "ManageSettings":
        """These values for every strategy, in the base and each profile: a command-line flag
        (``backtest --time-stop``) beats the configuration's profiles too."""
        data = self.model_dump()
        data.update(values)
        for profile in data["profiles"].values():
            if profile is not None:
                profile.update(values)
        return ManageSettings.model_validate(data)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merged(base[key], value)
        else:
            base[key] = value


class RiskRules(Section):
    """What one strategy's orders may do differently (``risk.profiles``): how they are sized, the
    margin mode, the leverage cap, the stop's distance from liquidation and the gate limits. The
    breakers, the leverage ladder and dynamic leverage judge the whole account: not per strategy."""

    sizing: SizingSettings
    margin_mode: Literal["isolated", "cross"]
    max_leverage: Leverage
    liquidation_buffer_pct: Pct
    gates: GateSettings


RiskProfile = _partial(RiskRules, "RiskProfile")


class RiskProfiles(_Partial):
    """Per-strategy overrides of ``risk:`` (a key for a strategy that does not exist is an error,
    like any unknown key)."""

    bos_fvg_fib: RiskProfile | None = None  # type: ignore[valid-type]
    momentum: RiskProfile | None = None  # type: ignore[valid-type]
    breakout: RiskProfile | None = None  # type: ignore[valid-type]
    cot_crowd: RiskProfile | None = None  # type: ignore[valid-type]
    ema_cross: RiskProfile | None = None  # type: ignore[valid-type]


class RiskSettings(RiskRules):
    leverage_ladder: LeverageLadderSettings
    dynamic_leverage: DynamicLeverageSettings
    breakers: BreakerSettings
    profiles: RiskProfiles

    def for_order(self, *, strategy: str, asset: str | None = None) -> "RiskSettings":
        """The limits an order of ``strategy`` on ``asset`` (a symbol's base) is sized and gated
        with: the strategy's profile merged over the base, section by section (as
        ``manage.profiles``), and its ``leverage_by_asset`` entry as the leverage. The one place
        that picks them: ``size``, the backtest and the stepwise composer all ask here (through
        ``risk.orders.size_orders``)."""
        profile = (
            getattr(self.profiles, strategy) if strategy in RiskProfiles.model_fields else None
        )
        if profile is None and asset not in self.sizing.leverage_by_asset:
            return self
        data = self.model_dump()
        if profile is not None:
            _merged(data, profile.model_dump())
        sizing = data["sizing"]
        sizing["leverage"] = sizing["leverage_by_asset"].get(asset, sizing["leverage"])
        return RiskSettings.model_validate(data)

    def has_profile(self, strategy: str) -> bool:
        return (
            strategy in RiskProfiles.model_fields and getattr(self.profiles, strategy) is not None
        )

    def overriding(self, *, sizing: dict[str, Any] | None = None, **values: Any) -> "RiskSettings":
        """These values for every strategy, in the base and each profile: a command-line flag
        (``size --risk-usd``, ``--margin-mode``; ``backtest --risk-pct``) beats the profiles too."""
        data = self.model_dump()
        profiles = [p for p in data["profiles"].values() if p is not None]
        for rules in (data, *profiles):
            rules.update(values)
            if sizing:
                rules["sizing"] = {**rules.get("sizing", {}), **sizing}
        return RiskSettings.model_validate(data)


class FeeSettings(Section):
    """The fee rates of a market that states none of its own (``load_markets``): one default
    that ``size``, ``backtest``, the paper broker and the replay exchange all read."""

    maker: Annotated[Float, Field(ge=-0.01, le=0.01)]
    taker: Annotated[Float, Field(ge=0, le=0.01)]


class BacktestSettings(Section):
    initial_equity: Positive
    slippage_bps: Annotated[Float, Field(ge=0, le=MAX_SLIPPAGE_BPS)]
    slippage_bps_per_pct_volume: Annotated[Float, Field(ge=0, le=MAX_SLIPPAGE_BPS)]
    liquidation_fee: Annotated[Float, Field(ge=0, le=0.1)]
    limit_fill: Literal["touch", "through"]
    funding_fallback_rate: Annotated[Float, Field(ge=-0.01, le=0.01)]
    units_below_zero: Literal["continue", "end"]


class PaperSettings(Section):
    account: Annotated[str, Field(pattern=PAPER_ACCOUNT)]
    initial_balance: Positive
    timeframe: Timeframe
    spread_ticks: Annotated[Int, Field(ge=0, le=1000)]  # the simulated book around the close
    top_of_book_pct: Annotated[Float, Field(gt=0, le=100)]  # its size: % of the bar's volume


class ExecutionRules(Section):
    """How one strategy's entries reach the venue (``engine.execution``): maker-first (post-only
    at the best bid/ask, re-priced toward the market, the rest at market after a while) or at
    market at once; child orders no bigger than a share of the top of the book."""

    maker_first: bool
    reprice_every_s: Positive
    reprice_ticks: Annotated[Int, Field(ge=1, le=1000)]
    give_up_after_s: NonNeg  # then the remainder at market (0: at once)
    max_book_impact_pct: Annotated[Float, Field(gt=0, le=1000)]


ExecutionProfile = _partial(ExecutionRules, "ExecutionProfile")


class ExecutionProfiles(_Partial):
    """Per-strategy overrides of ``execution:`` (as ``risk.profiles``)."""

    bos_fvg_fib: ExecutionProfile | None = None  # type: ignore[valid-type]
    momentum: ExecutionProfile | None = None  # type: ignore[valid-type]
    breakout: ExecutionProfile | None = None  # type: ignore[valid-type]
    cot_crowd: ExecutionProfile | None = None  # type: ignore[valid-type]
    ema_cross: ExecutionProfile | None = None  # type: ignore[valid-type]


class ExecutionSettings(ExecutionRules):
    client_order_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,8}$")]
    profiles: ExecutionProfiles

    def for_strategy(self, strategy: str) -> ExecutionRules:
        """The rules ``strategy``'s entries follow: its profile over the base, key by key (the
        one place that picks them, as ``manage.for_strategy``)."""
        rules = self.model_dump(include=set(ExecutionRules.model_fields))
        profile = getattr(self.profiles, strategy, None)
        if profile is not None:
            _merged(rules, profile.model_dump())
        return ExecutionRules.model_validate(rules)


class NotifySettings(Section):
    min_level: Literal["debug", "info", "warning", "error", "critical"]
    daily_report: bool


class ScheduleSettings(Section):
    fetch_every_s: Positive
    manage_every_s: Positive
    reconcile_every_s: Positive
    daily_report_utc: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Settings(Section):
    mode: Literal["paper", "live"]
    exchange: Venue
    data_dir: str
    exchanges: dict[str, ExchangeSettings]
    retry: RetrySettings
    replay: ReplaySettings
    universe: UniverseSettings
    fetch: FetchSettings
    strategies: StrategiesSettings
    scan: ScanSettings
    signal: SignalSettings
    context: ContextSettings
    cot: CotBiasSettings
    risk: RiskSettings
    manage: ManageSettings
    fees: FeeSettings
    backtest: BacktestSettings
    paper: PaperSettings
    execution: ExecutionSettings
    notify: NotifySettings
    schedule: ScheduleSettings

    def venue(self, exchange_id: str | None = None) -> ExchangeSettings:
        """Connection settings of a venue; unlisted ccxt venues get conservative defaults."""
        return self.exchanges.get(exchange_id or self.exchange, ExchangeSettings())
