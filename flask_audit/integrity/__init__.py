"""Integrity: proof that the trail is whole, and its orderly end.

The canonical form of an event, seals (an HMAC chain over Merkle roots of id ranges) made
by hand or automatically, verification that names the first damaged row, and retention:
pruning outside the window that leaves a sealed record of what it removed.
"""
