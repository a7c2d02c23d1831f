"""Setup detectors (frames in, setups out) and what composes them: the scanner and the signal
filters. ``NAMES`` lists the detectors without importing them (the CLI's help needs only that)."""

NAMES = ("bos_fvg_fib", "momentum", "breakout", "cot_crowd")
