"""Privacy: field-level encryption of personal data, export and erasure per resident."""
