"""Shared model library of the course."""
