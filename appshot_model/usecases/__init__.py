"""Downstream uses of generated traffic: what a network engineer computes from it.

- :mod:`.slicing`: radio-network slicing multiplexing efficiency E(p) (AppShot, seed 000
  section VIII, Table VI), on real and on generated hourly per-service series.
"""
