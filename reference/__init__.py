"""High-precision mpmath reference derived from the spec."""
