"""Setup detectors (frames in, setups out) and what composes them: the scanner and the signal
filters. ``NAMES`` lists the detectors without importing them (the CLI's help needs only that).

Detectors see closed bars only and judge at the caller's clock (the venue's ``now``). They
size nothing and place no order (``risk`` and ``engine`` do)."""

from cryptobot.core.lazy import surface

NAMES = ("bos_fvg_fib", "momentum", "breakout", "cot_crowd", "ema_cross")

_all, __getattr__, __dir__ = surface(
    __name__,
    names={
        "filters": ("BarFilters", "EntryFilters", "counts", "entry_filters"),
        "registry": ("lookup", "resolve"),
        "spec": ("BarEntries", "Reference", "Strategy"),
        "scanner": (
            "ScanRequest",
            "context_notes",
            "detect_all",
            "load_contexts",
            "scan",
            "seconds_to_next_close",
            "timeframes_of",
            "watch",
        ),
        "signals": ("decide", "decide_and_record"),
    },
    modules=("ema_cross", "momentum"),
)
__all__ = ["NAMES", *_all]
