"""Foreign exchange: rate snapshots from a pluggable source, quotes with an expiry, and
conversion through one liquidity account per currency (the TigerBeetle
currency-exchange pattern), with the spread booked to FX income.

* :mod:`settlement.fx.sources`: where rates come from (a rates file, a rail's forex
  rates);
* :mod:`settlement.fx.service`: snapshots and quotes;
* :mod:`settlement.fx.conversion`: the arithmetic and the postings of one conversion.
"""
