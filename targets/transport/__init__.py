"""Transports move artifacts to a device, run the slim runner there and bring results back."""
