"""Test helpers shared by several test modules (servers on loopback, fixtures' building blocks)."""
