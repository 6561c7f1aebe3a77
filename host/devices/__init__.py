"""Devices behind one driver interface (cpu today; sim and pynq come with the accelerator shell)."""
