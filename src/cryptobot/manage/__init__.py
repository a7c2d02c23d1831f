"""Position-management policy: what to do with an open position (shared by backtest and manage)."""
