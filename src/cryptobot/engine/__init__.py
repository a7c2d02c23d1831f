"""The composer: strategy signals -> sizing and gates -> orders to a venue -> fills read back ->
management per bar -> breakers, stepped on the venue's clock (``engine.stepwise``)."""

from cryptobot.engine.stepwise import StepwiseError, drive, run_stepwise

__all__ = ["StepwiseError", "drive", "run_stepwise"]
