"""engine domain of the device simulator."""
