"""The aggregator core: interactions in, statistics out.

Everything here is pure: no I/O, no event loop, no clock. Time is passed in, so the same
interactions in the same order always give the same state, which is what makes journal
replay exact.
"""
