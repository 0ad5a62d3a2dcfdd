"""Tests of the pure solver package."""
