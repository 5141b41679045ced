"""Syncing the vendor's data to ShopiMind: requests, windows, cursor rules, engine, scheduler."""
