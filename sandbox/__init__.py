"""Open-banking sandbox: mock banking APIs served from OpenAPI contracts over a synthetic bank."""

__version__ = "0.1.0"
