"""devices domain of the device simulator."""
