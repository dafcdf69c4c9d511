"""RiskRadar's numeric engine: numpy/scipy only, arrays and dataclasses in and out, no Django.

See types.py for the conventions (signs, units, horizons) every module follows.
"""
