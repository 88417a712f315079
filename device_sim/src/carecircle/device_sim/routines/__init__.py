"""routines domain of the device simulator."""
