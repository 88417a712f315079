"""live domain of the device simulator."""
