"""replay domain of the device simulator."""
