"""The org-wide sweep: which repositories, where each one stands, and the reports."""
