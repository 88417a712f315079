"""CareCircle edge gateway: device adapters → validation → durable queue → platform uplink."""
