"""JackTrip 1.x peer-to-peer UDP audio: the wire format (protocol.py) and a peer (session.py)."""
