"""Targets (device profiles), runners (one per runtime) and transports (local, ssh, adb)."""
