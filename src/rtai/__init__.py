"""rtai: a real-time audio intercom over RTP/UDP."""

__version__ = "0.1.0"
