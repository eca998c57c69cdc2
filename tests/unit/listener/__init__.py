"""Unit tests of the Linux listener's pure parts: its config message, its timers."""
