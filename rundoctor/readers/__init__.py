"""Readers turn log files into :class:`rundoctor.series.Run` records."""
