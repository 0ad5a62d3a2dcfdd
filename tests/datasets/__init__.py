"""Tests of the demo datasets (fixtures/)."""
