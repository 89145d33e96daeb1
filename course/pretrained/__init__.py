"""Pretrained weights shipped with the course, loaded with a checksum check, and the
scripts that trained them (each retrains its model with one command)."""
