"""The streaming path: runs → store → notify → sse. Each step lives in a module named after it."""
