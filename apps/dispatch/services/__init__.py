"""Dispatch writes. Import the function you need from its module."""
