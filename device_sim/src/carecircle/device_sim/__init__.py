"""CareCircle device simulator: elders, routines, devices and labelled incidents."""
