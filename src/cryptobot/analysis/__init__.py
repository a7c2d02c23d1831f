"""Indicators (TA-Lib) and market structure, computed on whole frames of closed bars."""
