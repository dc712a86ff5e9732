"""Venues: exchange access through ccxt, and a local Binance emulator to test it against."""
