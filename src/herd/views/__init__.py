"""How runs are shown: plain lines, the live display, status, reports."""
