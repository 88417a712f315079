"""incidents domain of the device simulator."""
