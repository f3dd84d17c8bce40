"""The Function Compute handlers, one folder per function (`index.handler`); importable for tests and tools."""
