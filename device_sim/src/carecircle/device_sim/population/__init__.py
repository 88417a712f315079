"""population domain of the device simulator."""
