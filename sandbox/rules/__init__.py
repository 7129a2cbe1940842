"""Domain rules as plain functions and constants: account classes, limits, suitability."""
